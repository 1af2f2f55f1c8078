"""All services of one process, wired once. Web app, CLI and tests start here."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from ehealth_certs.clock import Clock
from ehealth_certs.config import Settings
from ehealth_certs.etkra.depot import EtkDepot
from ehealth_certs.etkra.service import EtkRaService
from ehealth_certs.identity.trust import EidTrust
from ehealth_certs.notify import Outbox, SmtpTransport
from ehealth_certs.ra.issuance import IssuanceService
from ehealth_certs.ra.service import CertRaService
from ehealth_certs.ra.status import StatusService
from ehealth_certs.registry import RegistryService
from ehealth_certs.runtime import Runtime
from ehealth_certs.trustlist.service import TrustListService

log = logging.getLogger(__name__)


@dataclass
class Platform:
    rt: Runtime
    trust: EidTrust
    status: StatusService
    issuance: IssuanceService
    certra: CertRaService
    trustlists: TrustListService
    depot: EtkDepot
    etkra: EtkRaService
    mail: Outbox
    registry: RegistryService

    @classmethod
    def start(cls, settings: Settings, clock: Clock | None = None, *, create_pki: bool = True) -> Platform:
        rt = Runtime.start(settings, clock, create_pki=create_pki)
        trust = EidTrust(settings.eid_trust_dir)
        status = StatusService(rt)
        issuance = IssuanceService(rt, status)
        certra = CertRaService(rt, status, issuance, trust)
        depot = EtkDepot(rt)
        mail = Outbox(rt, SmtpTransport.from_settings(settings))
        platform = cls(
            rt=rt,
            trust=trust,
            status=status,
            issuance=issuance,
            certra=certra,
            trustlists=TrustListService(rt),
            depot=depot,
            etkra=EtkRaService(rt, certra, depot),
            mail=mail,
            registry=RegistryService(rt, mail),
        )
        platform.registry.register_platform_services()  # idempotent; announces URL changes
        status.load_responses()
        return platform

    def maintenance(self, *, reconcile_after: timedelta = timedelta(minutes=5)) -> list[str]:
        """One round of background work; returns the names of the steps that failed (and were logged).

        Each step runs on its own: a mail server outage must not delay a CRL. ``reconcile_after``: a
        ``signing`` row younger than this may belong to an issuance in flight; at start-up, before
        serving, the server passes zero.
        """
        steps: list[tuple[str, Callable[[], object]]] = [
            ("reconcile", lambda: self.issuance.reconcile(older_than=reconcile_after)),
            ("status", self.status.refresh),  # OCSP reload and re-signing, CRLs due
            ("etk-expiry", self.etkra.expire),  # ETKs of expired certificates, lapsed challenges
            ("trusted-lists", self.trustlists.refresh),  # a CA registered or withdrawn, or NextUpdate near
            ("mail", self.mail.deliver),  # the outbox, retried with backoff
            ("request-ids", self.certra.forget_used_request_ids),
        ]
        failed: list[str] = []
        for name, step in steps:
            try:
                step()
            except Exception:
                log.exception("maintenance step %s failed", name)
                failed.append(name)
        return failed

    def close(self) -> None:
        self.rt.close()
