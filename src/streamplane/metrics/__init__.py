"""Reading broker metrics (Prometheus JMX exporter) for health checks, loops and users."""
