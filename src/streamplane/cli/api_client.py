"""A small typed client for the mothership's REST API (``/v1``).

Every failure, whether the API answered with an error body
(``{"error": {"code", "message"}}``) or could not be reached at all, surfaces as one
:class:`ApiClientError`. Reads and requests that carry an ``Idempotency-Key`` are retried
a few times on connection failures and on 503, so a retried create is never applied twice.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, TypeAdapter, ValidationError

from streamplane.models import api as s

DEFAULT_TIMEOUT_S = 30.0
#: pauses before each retry of a safe request; the length is the number of retries
RETRY_DELAYS_S = (0.25, 1.0)
#: the longest Retry-After we honour between two attempts
MAX_RETRY_AFTER_S = 2.0
#: ``status`` of an ApiClientError raised without a usable HTTP answer
NO_RESPONSE = 0

M = TypeVar("M", bound=BaseModel)


class ApiClientError(Exception):
    """The API refused a request (``status`` is the HTTP status), or gave no usable answer
    (``status`` is ``NO_RESPONSE``: unreachable, timed out, or a body of the wrong shape)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def __repr__(self) -> str:
        return f"ApiClientError({self.status}, {self.code!r}, {self.message!r})"


class ApiClient:
    """The REST API at ``base_url``, called with the admin bearer ``token``."""

    def __init__(self, base_url: str, token: str, *, timeout: float = DEFAULT_TIMEOUT_S,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout, transport=transport,
                                  headers={"Authorization": f"Bearer {token}"})

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # ---- gateways ---------------------------------------------------------------------

    def list_gateways(self) -> list[s.GatewayOut]:
        return self._list(s.GatewayOut, self._call("GET", "/v1/gateways"))

    def reload_gateway_tls(self) -> s.GatewayReloadOut:
        return self._one(s.GatewayReloadOut, self._call("POST", "/v1/gateways/reload-tls"))

    # ---- clusters ---------------------------------------------------------------------

    def list_clusters(self) -> list[s.ClusterOut]:
        return self._list(s.ClusterOut, self._call("GET", "/v1/clusters"))

    def get_cluster(self, ref: str) -> s.ClusterOut:
        """By id or by name."""
        return self._one(s.ClusterOut, self._call("GET", f"/v1/clusters/{_seg(ref)}"))

    def create_cluster(self, *, name: str, type: str, cku: int | None = None, zones: int | None = None,
                       availability: str | None = None, kafka_version: str | None = None,
                       idempotency_key: str | None = None) -> s.ClusterAccepted:
        """Unset (None) fields take the API's defaults."""
        body = _without_none({"name": name, "type": type, "cku": cku, "zones": zones,
                              "availability": availability, "kafka_version": kafka_version})
        return self._one(s.ClusterAccepted, self._call("POST", "/v1/clusters", body, idempotency_key))

    def delete_cluster(self, ref: str, *, idempotency_key: str | None = None) -> s.ClusterAccepted:
        return self._one(s.ClusterAccepted,
                         self._call("DELETE", f"/v1/clusters/{_seg(ref)}", idempotency_key=idempotency_key))

    def scale_cluster(self, ref: str, cku: int, *, idempotency_key: str | None = None) -> s.ClusterAccepted:
        return self._one(s.ClusterAccepted, self._call(
            "PATCH", f"/v1/clusters/{_seg(ref)}", {"cku": cku}, idempotency_key))

    def cluster_load(self, ref: str) -> s.ClusterLoadOut:
        return self._one(s.ClusterLoadOut, self._call("GET", f"/v1/clusters/{_seg(ref)}/load"))

    def cluster_balance(self, ref: str) -> dict[str, Any]:
        data: dict[str, Any] = self._call("GET", f"/v1/clusters/{_seg(ref)}/balance")
        return data

    def rebalance(self, ref: str, *, dry_run: bool) -> dict[str, Any]:
        data: dict[str, Any] = self._call("POST", f"/v1/clusters/{_seg(ref)}/rebalance", {"dry_run": dry_run})
        return data

    def rebalance_action(self, ref: str, action: str) -> dict[str, Any]:
        data: dict[str, Any] = self._call("POST", f"/v1/clusters/{_seg(ref)}/rebalance/{_seg(action)}")
        return data

    def quarantine(self, ref: str, *, release: bool = False) -> s.ClusterAccepted:
        return self._one(s.ClusterAccepted, self._call(
            "POST", f"/v1/clusters/{_seg(ref)}/quarantine", {"release": release}))

    def get_operation(self, op_id: str) -> s.OperationOut:
        return self._one(s.OperationOut, self._call("GET", f"/v1/operations/{_seg(op_id)}"))

    # ---- API keys ---------------------------------------------------------------------

    def create_api_key(self, cluster: str, *, description: str = "",
                       idempotency_key: str | None = None) -> s.ApiKeyAccepted:
        return self._one(s.ApiKeyAccepted, self._call(
            "POST", f"/v1/clusters/{_seg(cluster)}/api-keys", {"description": description}, idempotency_key))

    def list_api_keys(self, cluster: str) -> list[s.ApiKeyOut]:
        return self._list(s.ApiKeyOut, self._call("GET", f"/v1/clusters/{_seg(cluster)}/api-keys"))

    def revoke_api_key(self, key: str) -> s.Accepted:
        return self._one(s.Accepted, self._call("DELETE", f"/v1/api-keys/{_seg(key)}"))

    # ---- topics -----------------------------------------------------------------------

    def list_topics(self, cluster: str) -> list[s.TopicOut]:
        return self._list(s.TopicOut, self._call("GET", f"/v1/clusters/{_seg(cluster)}/topics"))

    def get_topic(self, cluster: str, name: str) -> s.TopicOut:
        return self._one(s.TopicOut, self._call("GET", f"/v1/clusters/{_seg(cluster)}/topics/{_seg(name)}"))

    def create_topic(self, cluster: str, *, name: str, partitions: int | None = None,
                     replication_factor: int | None = None, configs: Mapping[str, str] | None = None,
                     idempotency_key: str | None = None) -> s.TopicAccepted:
        body = _without_none({"name": name, "partitions": partitions,
                              "replication_factor": replication_factor, "configs": dict(configs or {})})
        return self._one(s.TopicAccepted, self._call(
            "POST", f"/v1/clusters/{_seg(cluster)}/topics", body, idempotency_key))

    def update_topic(self, cluster: str, name: str, *, configs: Mapping[str, str | None] | None = None,
                     partitions: int | None = None) -> s.TopicAccepted:
        """``configs``: a value sets an override, None removes it."""
        body = _without_none({"configs": dict(configs or {}), "partitions": partitions})
        return self._one(s.TopicAccepted, self._call(
            "PATCH", f"/v1/clusters/{_seg(cluster)}/topics/{_seg(name)}", body))

    def delete_topic(self, cluster: str, name: str) -> s.Accepted:
        return self._one(s.Accepted, self._call("DELETE", f"/v1/clusters/{_seg(cluster)}/topics/{_seg(name)}"))

    # ---- plumbing ---------------------------------------------------------------------

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None,
              idempotency_key: str | None = None) -> Any:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        retry_safe = method == "GET" or idempotency_key is not None
        attempts = 1 + (len(RETRY_DELAYS_S) if retry_safe else 0)
        for attempt in range(attempts):
            last = attempt == attempts - 1
            try:
                resp = self._http.request(method, path, json=body, headers=headers)
            except httpx.TransportError as exc:
                if last:
                    raise self._unreachable(exc) from None
                time.sleep(RETRY_DELAYS_S[attempt])
                continue
            if resp.status_code == 503 and not last:
                time.sleep(_retry_after(resp, RETRY_DELAYS_S[attempt]))
                continue
            if resp.is_success:
                return _json(resp)
            raise _error_of(resp)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _unreachable(self, exc: httpx.TransportError) -> ApiClientError:
        if isinstance(exc, httpx.TimeoutException):
            return ApiClientError(NO_RESPONSE, "timeout",
                                  f"the Streamplane API at {self.base_url} did not answer in time")
        return ApiClientError(NO_RESPONSE, "unreachable",
                              f"cannot reach the Streamplane API at {self.base_url} ({exc or type(exc).__name__})")

    def _one(self, model: type[M], data: Any) -> M:
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            raise _unexpected(self.base_url, model.__name__, exc) from None

    def _list(self, model: type[M], data: Any) -> list[M]:
        try:
            return TypeAdapter(list[model]).validate_python(data)  # type: ignore[valid-type]
        except ValidationError as exc:
            raise _unexpected(self.base_url, f"a list of {model.__name__}", exc) from None


def _seg(value: str) -> str:
    """One path segment; dot segments would silently address another resource."""
    if value in ("", ".", ".."):
        raise ApiClientError(NO_RESPONSE, "invalid_request", f"{value!r} is not a valid name or id")
    return quote(value, safe="")


def _without_none(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if v is not None}


def _json(resp: httpx.Response) -> Any:
    try:
        return resp.json()
    except ValueError:
        raise ApiClientError(resp.status_code, "bad_response",
                             f"the API answered {resp.request.method} {resp.request.url.path} "
                             "with a body that is not JSON") from None


def _error_of(resp: httpx.Response) -> ApiClientError:
    try:
        err = resp.json()["error"]
        return ApiClientError(resp.status_code, str(err["code"]), str(err["message"]))
    except (ValueError, KeyError, TypeError):
        text = " ".join(resp.text.split())[:200] or resp.reason_phrase
        return ApiClientError(resp.status_code, f"http_{resp.status_code}",
                              f"the API answered {resp.status_code}: {text}")


def _retry_after(resp: httpx.Response, default: float) -> float:
    try:
        return min(float(resp.headers.get("Retry-After", default)), MAX_RETRY_AFTER_S)
    except ValueError:
        return default


def _unexpected(base_url: str, what: str, exc: ValidationError) -> ApiClientError:
    first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": str(exc)}
    where = ".".join(str(p) for p in first["loc"]) or "body"
    return ApiClientError(NO_RESPONSE, "bad_response",
                          f"the API at {base_url} sent something other than {what} "
                          f"({where}: {first['msg']}); is it a matching Streamplane version?")
