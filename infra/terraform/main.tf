# Terraform for the platform's Google Cloud resources. This first cut creates the relay's service
# account and Artifact Registry repository; later issues add Pub/Sub, Cloud SQL, the snapshot bucket,
# Cloud Armor and secrets.
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

# The relay runs as its own identity with no project roles: it makes no outbound calls yet.
resource "google_service_account" "relay" {
  account_id   = "msr-relay"
  display_name = "mls-secure-relay relay"
}
