# Secret Manager: every secret the services read, mounted into Cloud Run as environment variables
# (version "latest": a new version takes effect with the next revision; docs/runbook.md rotates them).
# Values are generated here, never written in a file of this repository; each service account may read
# only its own secrets (iam.tf). Hint pushes need no shared secret on Google Cloud: they carry OIDC tokens.

locals {
  relay_secrets   = { relay_metrics_key = "msr-relay-metrics-key" }
  mailbox_secrets = { mailbox_metrics_key = "msr-mailbox-metrics-key", mailbox_admin_token = "msr-mailbox-admin-token", mailbox_database_url = "msr-mailbox-database-url" }
}

resource "random_password" "relay_metrics_key" {
  length  = 40
  special = false
}

resource "random_password" "mailbox_metrics_key" {
  length  = 40
  special = false
}

resource "random_password" "mailbox_admin_token" {
  length  = 40
  special = false
}

resource "google_secret_manager_secret" "relay_metrics_key" {
  secret_id = local.relay_secrets.relay_metrics_key
  replication {
    auto {}
  }
}

resource "google_secret_manager_secret_version" "relay_metrics_key" {
  secret      = google_secret_manager_secret.relay_metrics_key.id
  secret_data = random_password.relay_metrics_key.result
}

resource "google_secret_manager_secret" "mailbox_metrics_key" {
  secret_id = local.mailbox_secrets.mailbox_metrics_key
  replication {
    auto {}
  }
}

resource "google_secret_manager_secret_version" "mailbox_metrics_key" {
  secret      = google_secret_manager_secret.mailbox_metrics_key.id
  secret_data = random_password.mailbox_metrics_key.result
}

resource "google_secret_manager_secret" "mailbox_admin_token" {
  secret_id = local.mailbox_secrets.mailbox_admin_token
  replication {
    auto {}
  }
}

resource "google_secret_manager_secret_version" "mailbox_admin_token" {
  secret      = google_secret_manager_secret.mailbox_admin_token.id
  secret_data = random_password.mailbox_admin_token.result
}

# postgres://mailbox:…@/mailbox?host=/cloudsql/PROJECT:REGION:INSTANCE: the unix socket of Cloud Run's
# Cloud SQL connection (services.tf mounts it at /cloudsql).
resource "google_secret_manager_secret" "mailbox_database_url" {
  secret_id = local.mailbox_secrets.mailbox_database_url
  replication {
    auto {}
  }
}

resource "google_secret_manager_secret_version" "mailbox_database_url" {
  secret      = google_secret_manager_secret.mailbox_database_url.id
  secret_data = "postgres://${google_sql_user.mailbox.name}:${random_password.mailbox_db.result}@/${google_sql_database.mailbox.name}?host=/cloudsql/${google_sql_database_instance.mailbox.connection_name}"
}
