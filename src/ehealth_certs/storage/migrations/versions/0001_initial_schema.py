"""Initial schema (frozen from the models at the first release; later changes get new revisions).

Revision ID: 0001
Revises:
Create Date: 2026-11-30 04:14:47.834794
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import ehealth_certs.storage.models.base

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "audit_events",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("at", ehealth_certs.storage.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("object", sa.Text(), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_audit_events")),
    )
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_events_action"), ["action"], unique=False)

    op.create_table(
        "blocked_keys",
        sa.Column("spki_sha256", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.Column("blocked_at", ehealth_certs.storage.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("spki_sha256", name=op.f("pk_blocked_keys")),
    )
    op.create_table(
        "issuers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("environment", sa.String(length=16), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("ski", sa.String(length=64), nullable=False),
        sa.Column("name_hash_sha1", sa.String(length=40), nullable=False),
        sa.Column("key_hash_sha1", sa.String(length=40), nullable=False),
        sa.Column("certificate_der", sa.LargeBinary(), nullable=False),
        sa.Column("not_before", ehealth_certs.storage.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("not_after", ehealth_certs.storage.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column(
            "status_since", ehealth_certs.storage.models.base.UTCDateTime(timezone=True), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_issuers")),
        sa.UniqueConstraint("environment", "role", "ski", name=op.f("uq_issuers_environment_role_ski")),
    )
    with op.batch_alter_table("issuers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_issuers_key_hash_sha1"), ["key_hash_sha1"], unique=False)
        batch_op.create_index(batch_op.f("ix_issuers_name_hash_sha1"), ["name_hash_sha1"], unique=False)

    op.create_table(
        "mail_outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.String(length=200), nullable=False),
        sa.Column("topic", sa.String(length=64), nullable=False),
        sa.Column("recipient", sa.String(length=320), nullable=False),
        sa.Column("subject", sa.String(length=300), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("headers", sa.JSON(), nullable=False),
        sa.Column("created_at", ehealth_certs.storage.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column(
            "next_attempt_at", ehealth_certs.storage.models.base.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("sent_at", ehealth_certs.storage.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mail_outbox")),
        sa.UniqueConstraint("message_id", name=op.f("uq_mail_outbox_message_id")),
    )
    with op.batch_alter_table("mail_outbox", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_mail_outbox_next_attempt_at"), ["next_attempt_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_mail_outbox_status"), ["status"], unique=False)

    op.create_table(
        "organisations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("id_type", sa.String(length=40), nullable=False),
        sa.Column("number", sa.String(length=20), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_organisations")),
        sa.UniqueConstraint("id_type", "number", name=op.f("uq_organisations_id_type_number")),
    )
    op.create_table(
        "professionals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ssin", sa.String(length=11), nullable=False),
        sa.Column("first_name", sa.String(length=200), nullable=False),
        sa.Column("last_name", sa.String(length=200), nullable=False),
        sa.Column("quality", sa.String(length=64), nullable=False),
        sa.Column("nihii", sa.String(length=11), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_professionals")),
        sa.UniqueConstraint("ssin", "quality", name=op.f("uq_professionals_ssin_quality")),
    )
    with op.batch_alter_table("professionals", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_professionals_ssin"), ["ssin"], unique=False)

    op.create_table(
        "projects",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("ssins", sa.JSON(), nullable=False),
        sa.Column("test_cases", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", ehealth_certs.storage.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_projects")),
        sa.UniqueConstraint("name", name=op.f("uq_projects_name")),
    )
    op.create_table(
        "registry_services",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("protocol", sa.String(length=16), nullable=False),
        sa.Column("documentation", sa.JSON(), nullable=False),
        sa.Column("owner", sa.String(length=100), nullable=False),
        sa.Column("created_at", ehealth_certs.storage.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", ehealth_certs.storage.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_registry_services")),
        sa.UniqueConstraint("name", name=op.f("uq_registry_services_name")),
    )
    op.create_table(
        "registry_subscriptions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", ehealth_certs.storage.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column(
            "confirmation_sent_at",
            ehealth_certs.storage.models.base.UTCDateTime(timezone=True),
            nullable=False,
        ),
        sa.Column(
            "confirmed_at", ehealth_certs.storage.models.base.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column(
            "unsubscribed_at", ehealth_certs.storage.models.base.UTCDateTime(timezone=True), nullable=True
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_registry_subscriptions")),
        sa.UniqueConstraint("email", name=op.f("uq_registry_subscriptions_email")),
    )
    with op.batch_alter_table("registry_subscriptions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_registry_subscriptions_status"), ["status"], unique=False)

    op.create_table(
        "tsl_operator_services",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("environment", sa.String(length=16), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("certificate_der", sa.LargeBinary(), nullable=False),
        sa.Column("service_type", sa.String(length=255), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("added_by", sa.String(length=100), nullable=False),
        sa.Column("added_at", ehealth_certs.storage.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tsl_operator_services")),
        sa.UniqueConstraint(
            "environment", "fingerprint", name=op.f("uq_tsl_operator_services_environment_fingerprint")
        ),
    )
    op.create_table(
        "tsl_publications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("environment", sa.String(length=16), nullable=False),
        sa.Column("sequence", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("issue_time", ehealth_certs.storage.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column(
            "next_update", ehealth_certs.storage.models.base.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column("services_digest", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.Column("published_by", sa.String(length=100), nullable=False),
        sa.Column("xml", sa.LargeBinary(), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tsl_publications")),
        sa.UniqueConstraint("environment", "sequence", name=op.f("uq_tsl_publications_environment_sequence")),
    )
    op.create_table(
        "tsl_status_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("environment", sa.String(length=16), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=255), nullable=False),
        sa.Column("since", ehealth_certs.storage.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("recorded_by", sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tsl_status_changes")),
        sa.UniqueConstraint(
            "environment",
            "fingerprint",
            "since",
            name=op.f("uq_tsl_status_changes_environment_fingerprint_since"),
        ),
    )
    with op.batch_alter_table("tsl_status_changes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_tsl_status_changes_fingerprint"), ["fingerprint"], unique=False)

    op.create_table(
        "used_request_ids",
        sa.Column("id", sa.String(length=100), nullable=False),
        sa.Column("expires_at", ehealth_certs.storage.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_used_request_ids")),
    )
    with op.batch_alter_table("used_request_ids", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_used_request_ids_expires_at"), ["expires_at"], unique=False)

    op.create_table(
        "certificate_requests",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("environment", sa.String(length=16), nullable=False),
        sa.Column("entity_type", sa.String(length=16), nullable=False),
        sa.Column("actor_type", sa.String(length=40), nullable=False),
        sa.Column("actor_id", sa.String(length=20), nullable=False),
        sa.Column("application_id", sa.String(length=30), nullable=True),
        sa.Column("subject_dn", sa.Text(), nullable=False),
        sa.Column("holder_name", sa.String(length=300), nullable=False),
        sa.Column("public_key_identifier", sa.String(length=40), nullable=False),
        sa.Column("spki_sha256", sa.String(length=64), nullable=False),
        sa.Column("csr_der", sa.LargeBinary(), nullable=False),
        sa.Column("contract", sa.JSON(), nullable=False),
        sa.Column("contact", sa.JSON(), nullable=False),
        sa.Column("base_service_usage", sa.JSON(), nullable=False),
        sa.Column("signer_ssin", sa.String(length=11), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("automatically_validated", sa.Boolean(), nullable=False),
        sa.Column("replaces_certificate_id", sa.Integer(), nullable=True),
        sa.Column("decided_by", sa.String(length=100), nullable=True),
        sa.Column("decision_reason", sa.Text(), nullable=True),
        sa.Column(
            "requested_at", ehealth_certs.storage.models.base.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column("decided_at", ehealth_certs.storage.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f("fk_certificate_requests_project_id_projects")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_certificate_requests")),
        sa.UniqueConstraint(
            "public_key_identifier", name=op.f("uq_certificate_requests_public_key_identifier")
        ),
    )
    with op.batch_alter_table("certificate_requests", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_certificate_requests_replaces_certificate_id"),
            ["replaces_certificate_id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_certificate_requests_signer_ssin"), ["signer_ssin"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_certificate_requests_spki_sha256"), ["spki_sha256"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_certificate_requests_subject_dn"), ["subject_dn"], unique=False)

    op.create_table(
        "crls",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("issuer_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.BigInteger(), nullable=False),
        sa.Column(
            "this_update", ehealth_certs.storage.models.base.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column(
            "next_update", ehealth_certs.storage.models.base.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column("der", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["issuer_id"], ["issuers.id"], name=op.f("fk_crls_issuer_id_issuers")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_crls")),
        sa.UniqueConstraint("issuer_id", "number", name=op.f("uq_crls_issuer_id_number")),
    )
    with op.batch_alter_table("crls", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_crls_issuer_id"), ["issuer_id"], unique=False)

    op.create_table(
        "mandates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ssin", sa.String(length=11), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organisation_id"], ["organisations.id"], name=op.f("fk_mandates_organisation_id_organisations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mandates")),
        sa.UniqueConstraint("ssin", "organisation_id", name=op.f("uq_mandates_ssin_organisation_id")),
    )
    with op.batch_alter_table("mandates", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_mandates_ssin"), ["ssin"], unique=False)

    op.create_table(
        "registry_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subscription_id", sa.Integer(), nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("selector", sa.String(length=32), nullable=False),
        sa.Column("verifier_sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", ehealth_certs.storage.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", ehealth_certs.storage.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("used_at", ehealth_certs.storage.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["registry_subscriptions.id"],
            name=op.f("fk_registry_tokens_subscription_id_registry_subscriptions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_registry_tokens")),
        sa.UniqueConstraint("selector", name=op.f("uq_registry_tokens_selector")),
    )
    with op.batch_alter_table("registry_tokens", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_registry_tokens_subscription_id"), ["subscription_id"], unique=False
        )

    op.create_table(
        "registry_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("service_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column(
            "status_since", ehealth_certs.storage.models.base.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column("notes", sa.Text(), nullable=False),
        sa.Column("created_at", ehealth_certs.storage.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["service_id"],
            ["registry_services.id"],
            name=op.f("fk_registry_versions_service_id_registry_services"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_registry_versions")),
        sa.UniqueConstraint("service_id", "version", name=op.f("uq_registry_versions_service_id_version")),
    )
    with op.batch_alter_table("registry_versions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_registry_versions_service_id"), ["service_id"], unique=False)

    op.create_table(
        "certificates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("issuer_id", sa.Integer(), nullable=False),
        sa.Column("serial", sa.String(length=42), nullable=False),
        sa.Column("request_id", sa.String(length=36), nullable=True),
        sa.Column("environment", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("subject_dn", sa.Text(), nullable=False),
        sa.Column("public_key_identifier", sa.String(length=40), nullable=False),
        sa.Column("spki_sha256", sa.String(length=64), nullable=False),
        sa.Column("not_before", ehealth_certs.storage.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("not_after", ehealth_certs.storage.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("tbs_sha256", sa.String(length=64), nullable=False),
        sa.Column("der", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", ehealth_certs.storage.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("issued_at", ehealth_certs.storage.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", ehealth_certs.storage.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("revocation_reason", sa.String(length=32), nullable=True),
        sa.Column("revoked_by", sa.String(length=100), nullable=True),
        sa.ForeignKeyConstraint(
            ["issuer_id"], ["issuers.id"], name=op.f("fk_certificates_issuer_id_issuers")
        ),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["certificate_requests.id"],
            name=op.f("fk_certificates_request_id_certificate_requests"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_certificates")),
        sa.UniqueConstraint("issuer_id", "serial", name=op.f("uq_certificates_issuer_id_serial")),
    )
    with op.batch_alter_table("certificates", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_certificates_public_key_identifier"), ["public_key_identifier"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_certificates_request_id"), ["request_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_certificates_spki_sha256"), ["spki_sha256"], unique=False)
        batch_op.create_index(batch_op.f("ix_certificates_status"), ["status"], unique=False)
        batch_op.create_index(batch_op.f("ix_certificates_subject_dn"), ["subject_dn"], unique=False)

    op.create_table(
        "registry_documents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("path", sa.String(length=300), nullable=False),
        sa.Column("media_type", sa.String(length=100), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["registry_versions.id"],
            name=op.f("fk_registry_documents_version_id_registry_versions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_registry_documents")),
        sa.UniqueConstraint("version_id", "path", name=op.f("uq_registry_documents_version_id_path")),
    )
    with op.batch_alter_table("registry_documents", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_registry_documents_version_id"), ["version_id"], unique=False)

    op.create_table(
        "registry_endpoints",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("environment", sa.String(length=16), nullable=False),
        sa.Column("binding", sa.String(length=16), nullable=False),
        sa.Column("url", sa.String(length=500), nullable=False),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["registry_versions.id"],
            name=op.f("fk_registry_endpoints_version_id_registry_versions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_registry_endpoints")),
        sa.UniqueConstraint(
            "version_id",
            "environment",
            "binding",
            name=op.f("uq_registry_endpoints_version_id_environment_binding"),
        ),
    )
    with op.batch_alter_table("registry_endpoints", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_registry_endpoints_version_id"), ["version_id"], unique=False)

    op.create_table(
        "etks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("environment", sa.String(length=16), nullable=False),
        sa.Column("certificate_id", sa.Integer(), nullable=False),
        sa.Column("id_type", sa.String(length=40), nullable=False),
        sa.Column("id_value", sa.String(length=20), nullable=False),
        sa.Column("application_id", sa.String(length=30), nullable=True),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("public_key_der", sa.LargeBinary(), nullable=False),
        sa.Column("challenge_sha256", sa.String(length=64), nullable=False),
        sa.Column(
            "challenge_expires_at",
            ehealth_certs.storage.models.base.UTCDateTime(timezone=True),
            nullable=False,
        ),
        sa.Column("serial", sa.String(length=50), nullable=True),
        sa.Column("der", sa.LargeBinary(), nullable=True),
        sa.Column("not_after", ehealth_certs.storage.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_at", ehealth_certs.storage.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column(
            "registered_at", ehealth_certs.storage.models.base.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column(
            "activated_at", ehealth_certs.storage.models.base.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("ended_at", ehealth_certs.storage.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("end_reason", sa.String(length=40), nullable=True),
        sa.ForeignKeyConstraint(
            ["certificate_id"], ["certificates.id"], name=op.f("fk_etks_certificate_id_certificates")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_etks")),
    )
    with op.batch_alter_table("etks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_etks_certificate_id"), ["certificate_id"], unique=False)
        batch_op.create_index(
            "ix_etks_lookup", ["environment", "id_type", "id_value", "status"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_etks_status"), ["status"], unique=False)

    op.create_table(
        "ocsp_responses",
        sa.Column("certificate_id", sa.Integer(), nullable=False),
        sa.Column("issuer_id", sa.Integer(), nullable=False),
        sa.Column("serial", sa.String(length=42), nullable=False),
        sa.Column("der", sa.LargeBinary(), nullable=False),
        sa.Column(
            "this_update", ehealth_certs.storage.models.base.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column(
            "next_update", ehealth_certs.storage.models.base.UTCDateTime(timezone=True), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["certificate_id"],
            ["certificates.id"],
            name=op.f("fk_ocsp_responses_certificate_id_certificates"),
        ),
        sa.ForeignKeyConstraint(
            ["issuer_id"], ["issuers.id"], name=op.f("fk_ocsp_responses_issuer_id_issuers")
        ),
        sa.PrimaryKeyConstraint("certificate_id", name=op.f("pk_ocsp_responses")),
    )
    with op.batch_alter_table("ocsp_responses", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ocsp_responses_issuer_id"), ["issuer_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_ocsp_responses_next_update"), ["next_update"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("ocsp_responses", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ocsp_responses_next_update"))
        batch_op.drop_index(batch_op.f("ix_ocsp_responses_issuer_id"))

    op.drop_table("ocsp_responses")
    with op.batch_alter_table("etks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_etks_status"))
        batch_op.drop_index("ix_etks_lookup")
        batch_op.drop_index(batch_op.f("ix_etks_certificate_id"))

    op.drop_table("etks")
    with op.batch_alter_table("registry_endpoints", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_registry_endpoints_version_id"))

    op.drop_table("registry_endpoints")
    with op.batch_alter_table("registry_documents", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_registry_documents_version_id"))

    op.drop_table("registry_documents")
    with op.batch_alter_table("certificates", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_certificates_subject_dn"))
        batch_op.drop_index(batch_op.f("ix_certificates_status"))
        batch_op.drop_index(batch_op.f("ix_certificates_spki_sha256"))
        batch_op.drop_index(batch_op.f("ix_certificates_request_id"))
        batch_op.drop_index(batch_op.f("ix_certificates_public_key_identifier"))

    op.drop_table("certificates")
    with op.batch_alter_table("registry_versions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_registry_versions_service_id"))

    op.drop_table("registry_versions")
    with op.batch_alter_table("registry_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_registry_tokens_subscription_id"))

    op.drop_table("registry_tokens")
    with op.batch_alter_table("mandates", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_mandates_ssin"))

    op.drop_table("mandates")
    with op.batch_alter_table("crls", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_crls_issuer_id"))

    op.drop_table("crls")
    with op.batch_alter_table("certificate_requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_certificate_requests_subject_dn"))
        batch_op.drop_index(batch_op.f("ix_certificate_requests_spki_sha256"))
        batch_op.drop_index(batch_op.f("ix_certificate_requests_signer_ssin"))
        batch_op.drop_index(batch_op.f("ix_certificate_requests_replaces_certificate_id"))

    op.drop_table("certificate_requests")
    with op.batch_alter_table("used_request_ids", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_used_request_ids_expires_at"))

    op.drop_table("used_request_ids")
    with op.batch_alter_table("tsl_status_changes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tsl_status_changes_fingerprint"))

    op.drop_table("tsl_status_changes")
    op.drop_table("tsl_publications")
    op.drop_table("tsl_operator_services")
    with op.batch_alter_table("registry_subscriptions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_registry_subscriptions_status"))

    op.drop_table("registry_subscriptions")
    op.drop_table("registry_services")
    op.drop_table("projects")
    with op.batch_alter_table("professionals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_professionals_ssin"))

    op.drop_table("professionals")
    op.drop_table("organisations")
    with op.batch_alter_table("mail_outbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_mail_outbox_status"))
        batch_op.drop_index(batch_op.f("ix_mail_outbox_next_attempt_at"))

    op.drop_table("mail_outbox")
    with op.batch_alter_table("issuers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_issuers_name_hash_sha1"))
        batch_op.drop_index(batch_op.f("ix_issuers_key_hash_sha1"))

    op.drop_table("issuers")
    op.drop_table("blocked_keys")
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_events_action"))

    op.drop_table("audit_events")
