# Terraform for the platform's Google Cloud resources: the Artifact Registry repository, the relay's
# and the mailbox API's service accounts, the hint bus (Pub/Sub topics, push subscriptions to the
# mailbox API, and the identities allowed to publish and push), the snapshot bucket, and the right to
# write trace spans. Later issues add Cloud SQL, Cloud Armor and secrets.
terraform {
  required_version = ">= 1.5"
  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 6.0"
    }
  }
}

variable "project_id" {
  type        = string
  description = "Google Cloud project id."
}

variable "region" {
  type        = string
  description = "Region for Cloud Run and Artifact Registry."
  default     = "europe-west1"
}

variable "mailbox_push_url" {
  type        = string
  description = "The mailbox API's push endpoint, e.g. https://mailbox.example.com/internal/pubsub/push (also the OIDC audience)."
}

provider "google" {
  project = var.project_id
  region  = var.region
}

resource "google_artifact_registry_repository" "msr" {
  repository_id = "msr"
  format        = "DOCKER"
  location      = var.region
  description   = "mls-secure-relay images"
}

# The relay runs as its own identity. Its one project role is roles/cloudtrace.agent (spans, at the
# end); everything else it may do is granted on one resource: hint publishes per topic, snapshots on the
# bucket.
resource "google_service_account" "relay" {
  account_id   = "msr-relay"
  display_name = "mls-secure-relay relay"
}

# The mailbox API's identity (serviceAccountName in infra/cloudrun/mailbox-api.yaml). If the account
# already exists, import it first: terraform import google_service_account.mailbox_api
# projects/PROJECT_ID/serviceAccounts/msr-mailbox-api@PROJECT_ID.iam.gserviceaccount.com
resource "google_service_account" "mailbox_api" {
  account_id   = "msr-mailbox-api"
  display_name = "mls-secure-relay mailbox API"
}

# The hint bus (DESIGN.md §5): one topic per hint kind; 445 hints carry the group as ordering key.
resource "google_pubsub_topic" "hints" {
  for_each                   = toset(["mls-group-hints", "noise-dm-hints"])
  name                       = each.key
  message_retention_duration = "604800s"
}

# Publish only: the relay cannot read, create or delete anything on the bus.
resource "google_pubsub_topic_iam_member" "relay_publishes" {
  for_each = google_pubsub_topic.hints
  topic    = each.value.name
  role     = "roles/pubsub.publisher"
  member   = "serviceAccount:${google_service_account.relay.email}"
}

# The identity in the push requests' OIDC tokens; the mailbox API checks its email (HINTS_PUSH_SERVICE_ACCOUNT).
resource "google_service_account" "hints_push" {
  account_id   = "msr-hints-push"
  display_name = "mls-secure-relay hint push"
}

data "google_project" "this" {}

# Pub/Sub's service agent mints the push tokens for that identity.
resource "google_service_account_iam_member" "pubsub_mints_push_tokens" {
  service_account_id = google_service_account.hints_push.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"
}

# Poison messages are acknowledged by the mailbox API; what it cannot take after 10 tries (e.g. a
# database outage longer than the retries) is parked here instead of retried forever.
resource "google_pubsub_topic" "hints_dead_letter" {
  name = "mailbox-hints-dead-letter"
}

resource "google_pubsub_subscription" "mailbox_hints" {
  for_each                = google_pubsub_topic.hints
  name                    = "mailbox-${each.key}"
  topic                   = each.value.id
  ack_deadline_seconds    = 30
  enable_message_ordering = each.key == "mls-group-hints"

  push_config {
    push_endpoint = var.mailbox_push_url
    oidc_token {
      service_account_email = google_service_account.hints_push.email
      audience              = var.mailbox_push_url
    }
  }

  retry_policy {
    minimum_backoff = "1s"
    maximum_backoff = "60s"
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.hints_dead_letter.id
    max_delivery_attempts = 10
  }
}

# Dead-lettering needs Pub/Sub's service agent to publish to the dead-letter topic and to acknowledge
# on the source subscriptions.
resource "google_pubsub_topic_iam_member" "dead_letter_publisher" {
  topic  = google_pubsub_topic.hints_dead_letter.name
  role   = "roles/pubsub.publisher"
  member = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"
}

resource "google_pubsub_subscription_iam_member" "dead_letter_subscriber" {
  for_each     = google_pubsub_subscription.mailbox_hints
  subscription = each.value.name
  role         = "roles/pubsub.subscriber"
  member       = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"
}

# Relay snapshots (DESIGN.md §4): the relay may create, read, list and delete objects in this bucket
# and nothing else. Versioning keeps a deleted or overwritten snapshot for 7 days, in case of a bad prune.
resource "google_storage_bucket" "backups" {
  name                        = "${var.project_id}-msr-backups"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"

  versioning {
    enabled = true
  }

  lifecycle_rule {
    condition {
      days_since_noncurrent_time = 7
    }
    action {
      type = "Delete"
    }
  }
}

resource "google_storage_bucket_iam_member" "relay_snapshots" {
  bucket = google_storage_bucket.backups.name
  role   = "roles/storage.objectUser"
  member = "serviceAccount:${google_service_account.relay.email}"
}

# Tracing (OTEL_TRACES_EXPORTER=gcp in infra/cloudrun): both services write their spans to Cloud Trace.
# roles/cloudtrace.agent may write spans and cannot read any; Cloud Trace has no finer resource to grant
# it on than the project.
resource "google_project_iam_member" "trace_writers" {
  for_each = {
    relay       = google_service_account.relay.email
    mailbox_api = google_service_account.mailbox_api.email
  }
  project = var.project_id
  role    = "roles/cloudtrace.agent"
  member  = "serviceAccount:${each.value}"
}
