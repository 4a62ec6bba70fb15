# Secret Manager: every secret the services read, mounted into Cloud Run as environment variables
# (version "latest": a new version takes effect with the next revision; docs/runbook.md rotates them).
# Values are generated here, never written in a file of this repository; each service account may read
# only its own secrets (iam.tf). Hint pushes need no shared secret on Google Cloud: they carry OIDC tokens.

locals {
  # *_gmp_config: the metrics sidecar's configuration, which holds the metrics key (monitoring.tf).
  # relay_admin_key (GET /admin/fingerprint) exists only with replicas (replication.tf).
  relay_secrets   = merge({ relay_metrics_key = "msr-relay-metrics-key", relay_gmp_config = "msr-relay-gmp-config" }, { for k, v in { relay_admin_key = "msr-relay-admin-key" } : k => v if local.replication })
  mailbox_secrets = { mailbox_metrics_key = "msr-mailbox-metrics-key", mailbox_admin_token = "msr-mailbox-admin-token", mailbox_database_url = "msr-mailbox-database-url", mailbox_gmp_config = "msr-mailbox-gmp-config" }
  # The secrets whose value is a random key (the database URL is built below).
  generated_secrets = toset(concat(["relay_metrics_key", "mailbox_metrics_key", "mailbox_admin_token"], local.replication ? ["relay_admin_key"] : []))
}

resource "google_secret_manager_secret" "all" {
  for_each  = merge(local.relay_secrets, local.mailbox_secrets)
  secret_id = each.value
  replication {
    auto {}
  }
}

resource "random_password" "secret" {
  for_each = local.generated_secrets
  length   = 40
  special  = false
}

resource "google_secret_manager_secret_version" "generated" {
  for_each    = random_password.secret
  secret      = google_secret_manager_secret.all[each.key].id
  secret_data = each.value.result
}

# postgres://mailbox:…@/mailbox?host=/cloudsql/PROJECT:REGION:INSTANCE: the unix socket of Cloud Run's
# Cloud SQL connection (services.tf mounts it at /cloudsql).
resource "google_secret_manager_secret_version" "mailbox_database_url" {
  secret      = google_secret_manager_secret.all["mailbox_database_url"].id
  secret_data = "postgres://${google_sql_user.mailbox.name}:${random_password.mailbox_db.result}@/${google_sql_database.mailbox.name}?host=/cloudsql/${google_sql_database_instance.mailbox.connection_name}"
}
