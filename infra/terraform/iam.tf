# Every identity and every grant of the platform, each on the narrowest resource that takes it. No
# primitive role anywhere; a project-level grant only where the role has no finer resource
# (roles/cloudtrace.agent, roles/monitoring.metricWriter, roles/cloudsql.client, roles/logging.logWriter,
# and with relay replicas the custom role of replication.tf).
#
#   msr-relay        publish to the two hint topics; objects of the snapshot bucket; its metrics key and
#                    metrics sidecar configuration; write spans and metrics; with replicas only
#                    (replication.tf): publish to and attach to the events topic, make/pull/delete its
#                    own subscriptions (a custom role: the one project-level Pub/Sub grant), its admin key
#   msr-mailbox-api  Cloud SQL client; its four secrets; write spans and metrics (push mode: no subscriber role)
#   msr-hints-push   the identity in push OIDC tokens: run.invoker on the mailbox service only
#   msr-deployer     what cloudbuild.yaml does: push images to the repository, deploy the two services
#                    as their own identities, write build logs
#   Pub/Sub's agent  mint push tokens for msr-hints-push; dead-letter (publish to the dead-letter topic,
#                    acknowledge on the hint subscriptions)

resource "google_service_account" "relay" {
  account_id   = "msr-relay"
  display_name = "mls-secure-relay relay"
}

resource "google_service_account" "mailbox_api" {
  account_id   = "msr-mailbox-api"
  display_name = "mls-secure-relay mailbox API"
}

resource "google_service_account" "hints_push" {
  account_id   = "msr-hints-push"
  display_name = "mls-secure-relay hint push"
}

resource "google_service_account" "deployer" {
  account_id   = "msr-deployer"
  display_name = "mls-secure-relay deployer (Cloud Build)"
}

# --- relay

resource "google_pubsub_topic_iam_member" "relay_publishes" {
  for_each = google_pubsub_topic.hints
  topic    = each.value.name
  role     = "roles/pubsub.publisher"
  member   = "serviceAccount:${google_service_account.relay.email}"
}

resource "google_storage_bucket_iam_member" "relay_snapshots" {
  bucket = google_storage_bucket.backups.name
  role   = "roles/storage.objectUser"
  member = "serviceAccount:${google_service_account.relay.email}"
}

resource "google_secret_manager_secret_iam_member" "relay_reads" {
  for_each  = local.relay_secrets
  secret_id = google_secret_manager_secret.all[each.key].secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.relay.email}"
}

# --- mailbox API

resource "google_project_iam_member" "mailbox_sql_client" {
  project = var.project_id
  role    = "roles/cloudsql.client"
  member  = "serviceAccount:${google_service_account.mailbox_api.email}"
}

resource "google_secret_manager_secret_iam_member" "mailbox_reads" {
  for_each  = local.mailbox_secrets
  secret_id = google_secret_manager_secret.all[each.key].secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.mailbox_api.email}"
}

# --- both: spans to Cloud Trace (OTEL_TRACES_EXPORTER=gcp). The role writes spans and reads none.

resource "google_project_iam_member" "trace_writers" {
  for_each = {
    relay       = google_service_account.relay.email
    mailbox_api = google_service_account.mailbox_api.email
  }
  project = var.project_id
  role    = "roles/cloudtrace.agent"
  member  = "serviceAccount:${each.value}"
}

# --- push identity

resource "google_cloud_run_v2_service_iam_member" "push_invokes_mailbox" {
  name     = google_cloud_run_v2_service.mailbox_api.name
  location = var.region
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.hints_push.email}"
}

resource "google_service_account_iam_member" "pubsub_mints_push_tokens" {
  service_account_id = google_service_account.hints_push.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = local.pubsub_agent
}

resource "google_pubsub_topic_iam_member" "dead_letter_publisher" {
  topic  = google_pubsub_topic.hints_dead_letter.name
  role   = "roles/pubsub.publisher"
  member = local.pubsub_agent
}

resource "google_pubsub_subscription_iam_member" "dead_letter_subscriber" {
  for_each     = google_pubsub_subscription.mailbox_hints
  subscription = each.value.name
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_agent
}

# --- deployer (cloudbuild.yaml runs as it)

resource "google_artifact_registry_repository_iam_member" "deployer_pushes" {
  repository = google_artifact_registry_repository.msr.name
  location   = var.region
  role       = "roles/artifactregistry.writer"
  member     = "serviceAccount:${google_service_account.deployer.email}"
}

resource "google_cloud_run_v2_service_iam_member" "deployer_deploys" {
  for_each = {
    relay       = google_cloud_run_v2_service.relay.name
    mailbox_api = google_cloud_run_v2_service.mailbox_api.name
  }
  name     = each.value
  location = var.region
  role     = "roles/run.developer"
  member   = "serviceAccount:${google_service_account.deployer.email}"
}

# A revision runs as the service's own account: deploying it needs actAs on that account, and only that.
resource "google_service_account_iam_member" "deployer_acts_as" {
  for_each = {
    relay       = google_service_account.relay.name
    mailbox_api = google_service_account.mailbox_api.name
  }
  service_account_id = each.value
  role               = "roles/iam.serviceAccountUser"
  member             = "serviceAccount:${google_service_account.deployer.email}"
}

resource "google_project_iam_member" "deployer_logs" {
  project = var.project_id
  role    = "roles/logging.logWriter"
  member  = "serviceAccount:${google_service_account.deployer.email}"
}

# --- both: metrics to Cloud Monitoring (the Managed Service for Prometheus sidecar, monitoring.tf). The
# role writes time series and reads none.

resource "google_project_iam_member" "metric_writers" {
  for_each = {
    relay       = google_service_account.relay.email
    mailbox_api = google_service_account.mailbox_api.email
  }
  project = var.project_id
  role    = "roles/monitoring.metricWriter"
  member  = "serviceAccount:${each.value}"
}
