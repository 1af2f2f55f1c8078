"""All services of one process, wired once. Web app, CLI and tests start here."""

from __future__ import annotations

from dataclasses import dataclass, field
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


@dataclass
class Platform:
    rt: Runtime
    trust: EidTrust
    status: StatusService
    issuance: IssuanceService
    certra: CertRaService
    trustlists: TrustListService
    depot: EtkDepot = field(init=False)
    etkra: EtkRaService = field(init=False)
    mail: Outbox = field(init=False)
    registry: RegistryService = field(init=False)

    @classmethod
    def start(cls, settings: Settings, clock: Clock | None = None, *, create_pki: bool = True) -> Platform:
        rt = Runtime.start(settings, clock, create_pki=create_pki)
        trust = EidTrust(settings.eid_trust_dir)
        status = StatusService(rt)
        issuance = IssuanceService(rt, status)
        certra = CertRaService(rt, status, issuance, trust)
        trustlists = TrustListService(rt)
        platform = cls(
            rt=rt, trust=trust, status=status, issuance=issuance, certra=certra, trustlists=trustlists
        )
        platform.depot = EtkDepot(rt)
        platform.etkra = EtkRaService(rt, certra, platform.depot)
        platform.mail = Outbox(rt, SmtpTransport.from_settings(settings))
        platform.registry = RegistryService(rt, platform.mail)
        platform.registry.register_platform_services()  # idempotent; announces URL changes
        status.load_responses()
        return platform

    def maintenance(self, *, reconcile_after: timedelta = timedelta(minutes=5)) -> None:
        """One round of background work: reconcile crashed issuances, refresh OCSP, publish CRLs.

        ``reconcile_after``: a ``signing`` row younger than this may belong to an issuance in flight.
        At start-up, before serving, the server passes zero.
        """
        self.issuance.reconcile(older_than=reconcile_after)
        self.status.refresh()
        self.etkra.expire()  # ETKs of expired certificates, lapsed challenges
        self.trustlists.refresh()  # a CA registered or withdrawn, or NextUpdate near: republish
        self.mail.deliver()  # the outbox: registry notices and other mail, retried with backoff
        self.certra.forget_used_request_ids()

    def close(self) -> None:
        self.rt.close()
