# The whole platform on Google Cloud: `terraform apply` here, then `make deploy` (cloudbuild.yaml) for the
# images. Files by concern: gateway.tf (load balancer), armor.tf (Cloud Armor), services.tf (Cloud Run),
# bus.tf (Pub/Sub), replication.tf (relay replicas, opt-in), data.tf (Cloud SQL, snapshot bucket),
# secrets.tf (Secret Manager), iam.tf (service accounts and every grant), monitoring.tf (dashboards, alerts,
# SLOs from infra/monitoring), variables.tf, outputs.tf. docs/runbook.md walks through the first deploy.
terraform {
  required_version = ">= 1.5"
  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 6.10"
    }
    random = {
      source  = "hashicorp/random"
      version = "~> 3.6"
    }
  }
}

provider "google" {
  project = var.project_id
  region  = var.region
}

data "google_project" "this" {}

locals {
  # Pub/Sub's service agent: mints push tokens, dead-letters undeliverable hints.
  pubsub_agent = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"
  # What clients see: one host for both services.
  relay_public_url = "wss://${var.domain}"
  api_public_url   = "https://${var.domain}"
  # Pub/Sub pushes to the mailbox's own run.app URL (push from the same project counts as internal
  # traffic, so ingress stays closed to the internet); the load balancer does not route /internal.
  push_endpoint = "${google_cloud_run_v2_service.mailbox_api.uri}/internal/pubsub/push"
  # The OIDC audience of the push tokens, which the app verifies: a fixed name, not the run.app URL (the
  # service cannot name its own URL in its configuration).
  push_audience = "https://${var.domain}/internal/pubsub/push"
}
