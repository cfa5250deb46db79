"""The loops that run the service without a human: balancer, detector, scaler, upgrader."""
