"""HTTP client for the platform's REST API. Problems (RFC 9457) come back as DomainError of the same kind."""

from __future__ import annotations

import base64
from typing import Any

import httpx

from ehealth_certs.environment import Environment
from ehealth_certs.errors import DomainError, ErrorKind


def _raise_for_problem(response: httpx.Response) -> None:
    if response.status_code < 400:
        return
    kind = ErrorKind.INTERNAL
    detail = f"HTTP {response.status_code}"
    try:
        body = response.json()
        kind = ErrorKind(body.get("kind", "internal"))
        detail = body.get("detail") or detail
        params = {k: v for k, v in body.items() if k not in {"type", "title", "status", "detail", "kind"}}
    except (ValueError, KeyError):
        params = {}
    raise DomainError(kind, detail, **params)


class PlatformClient:
    def __init__(
        self,
        server: str,
        environment: Environment,
        *,
        http: httpx.Client | None = None,
        timeout: float = 30.0,
    ) -> None:
        """``http``: an existing client (tests hand in an in-process one); by default a new one."""
        self.server = server.rstrip("/")
        self.environment = environment
        self._http = http if http is not None else httpx.Client(base_url=self.server, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> PlatformClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing ---------------------------------------------------------------------------------
    def _certra(self, path: str) -> str:
        return f"/api/{self.environment.value}/certra{path}"

    def _json(self, method: str, url: str, **kw: Any) -> Any:
        try:
            response = self._http.request(method, url, **kw)
        except httpx.HTTPError as exc:
            raise DomainError(ErrorKind.UNAVAILABLE, f"cannot reach {self.server}: {exc}") from exc
        _raise_for_problem(response)
        return response.json()

    def _signed(self, url: str, token: str) -> Any:
        return self._json("POST", url, content=token.encode(), headers={"Content-Type": "application/jose"})

    # -- CertRA -----------------------------------------------------------------------------------
    def actor_qualities(self, token: str) -> dict[str, Any]:
        result: dict[str, Any] = self._signed(self._certra("/actor-qualities"), token)
        return result

    def generate_contract(self, body: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self._json("POST", self._certra("/contracts"), json=body)
        return result

    def generate_certificate(self, token: str) -> dict[str, Any]:
        result: dict[str, Any] = self._signed(self._certra("/certificates"), token)
        return result

    def get_certificate(self, public_key_identifier: str) -> list[bytes]:
        body = self._json("GET", self._certra(f"/certificates/{public_key_identifier}"))
        return [base64.b64decode(c) for c in body["certificates"]]

    def generate_revocation_contract(self, body: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self._json("POST", self._certra("/revocation-contracts"), json=body)
        return result

    def revoke(self, token: str) -> None:
        self._signed(self._certra("/revocations"), token)

    def certificate_info(self, token: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._signed(self._certra("/certificate-info"), token)
        return result

    # -- EtkRA (signed with the eHealth authentication key) and the ETK depot -----------------------
    def _etkra(self, path: str) -> str:
        return f"/api/{self.environment.value}/etkra{path}"

    def etk_start(self, token: str) -> dict[str, Any]:
        result: dict[str, Any] = self._signed(self._etkra("/registrations"), token)
        return result

    def etk_complete(self, token: str) -> dict[str, Any]:
        result: dict[str, Any] = self._signed(self._etkra("/registrations/complete"), token)
        return result

    def etk_activate(self, token: str) -> dict[str, Any]:
        result: dict[str, Any] = self._signed(self._etkra("/activation"), token)
        return result

    def get_etk(self, id_type: str, value: str, application_id: str | None = None) -> dict[str, Any]:
        """The depot's answer: ``{"identifier", "etk"}`` (one match) or ``{"matchingEtks": [...]}``."""
        params = {"type": id_type, "value": value}
        if application_id:
            params["applicationId"] = application_id
        result: dict[str, Any] = self._json(
            "GET", f"/api/{self.environment.value}/etkdepot/etks", params=params
        )
        return result
