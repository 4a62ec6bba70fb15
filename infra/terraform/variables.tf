variable "project_id" {
  type        = string
  description = "Google Cloud project id."
}

variable "region" {
  type        = string
  description = "Region of Cloud Run, Cloud SQL, Artifact Registry and the snapshot bucket."
  default     = "europe-west1"
}

variable "domain" {
  type        = string
  description = "The platform's host name, e.g. relay.example.com: clients use wss://DOMAIN/ and https://DOMAIN/api/v1. Its DNS A record must point at the gateway_ip output before the managed certificate can be issued."
}

variable "allowed_ip_ranges" {
  type        = list(string)
  description = "Client addresses/CIDR ranges allowed through Cloud Armor on both backends (the spec's IP allowlist); empty: no allowlist, everyone passes (still rate-limited)."
  default     = []
}

variable "rate_limit_requests" {
  type        = number
  description = "Requests (HTTP requests and WebSocket upgrades) one client IP may make per rate_limit_interval_sec before Cloud Armor bans it."
  default     = 600
}

variable "rate_limit_interval_sec" {
  type        = number
  description = "Window of rate_limit_requests, in seconds (Cloud Armor accepts 10, 30, 60, 120, 180, 240, 300, 600, 900, 1200, 1800, 2700, 3600)."
  default     = 60
}

variable "ban_duration_sec" {
  type        = number
  description = "How long a client IP over the rate limit is refused (HTTP 429), in seconds."
  default     = 300
}

variable "mailbox_min_instances" {
  type        = number
  description = "Fewest mailbox API instances (0 allows scale to zero, at the price of cold starts)."
  default     = 1
}

variable "mailbox_max_instances" {
  type        = number
  description = "Most mailbox API instances. Each opens up to 15 PostgreSQL connections (DB_POOL_SIZE 10, and half as many for the NIP-98 gate): keep max × 15 under db_max_connections."
  default     = 10
}

variable "relay_image" {
  type        = string
  description = "Image the relay service is created with. The first apply uses Google's placeholder; `make deploy` then rolls out the real image, and Terraform leaves the image alone afterwards."
  default     = "us-docker.pkg.dev/cloudrun/container/hello"
}

variable "mailbox_image" {
  type        = string
  description = "Image the mailbox API service is created with (see relay_image)."
  default     = "us-docker.pkg.dev/cloudrun/container/hello"
}

variable "db_tier" {
  type        = string
  description = "Cloud SQL machine tier of the mailbox database."
  default     = "db-custom-1-3840"
}

variable "db_max_connections" {
  type        = number
  description = "PostgreSQL max_connections of the mailbox database (Cloud SQL's default for the default tier is 100)."
  default     = 200
}

variable "deletion_protection" {
  type        = bool
  description = "Protects the Cloud SQL instance and the Cloud Run services from `terraform destroy`. Turn off only to tear a test project down."
  default     = true
}

variable "notification_channels" {
  type        = list(string)
  description = "Existing Cloud Monitoring notification channels every alert notifies (ids: projects/PROJECT/notificationChannels/ID; PagerDuty, Slack, SMS...). Empty by default: alerts still open incidents in the console."
  default     = []
}

variable "alert_emails" {
  type        = list(string)
  description = "Email addresses to notify of every alert: an email notification channel is made for each, besides notification_channels."
  default     = []
}

variable "alert_thresholds" {
  type        = map(number)
  description = "Alert thresholds by alert name, overriding the defaults of infra/monitoring/alerts.yaml (listed with their meaning in docs/slo.md), e.g. { HintOutboxGrowing = 500 }. The same defaults feed the local Prometheus."
  default     = {}
}

variable "slo_targets" {
  type        = map(number)
  description = "SLO targets by SLO name, overriding the defaults of infra/monitoring/slos.yaml (docs/slo.md), e.g. { relay-req-latency = 0.995 }; the burn-rate alerts follow."
  default     = {}
}

variable "runbook_url" {
  type        = string
  description = "Where operators read docs/runbook.md (e.g. the repository's web page of it); alert notifications link to its sections. Empty: the notifications name the path in the repository."
  default     = ""
}

variable "gmp_sidecar_image" {
  type        = string
  description = "Google's Managed Service for Prometheus sidecar for Cloud Run, run beside each service to send its /metrics to Cloud Monitoring (monitoring.tf)."
  default     = "us-docker.pkg.dev/cloud-ops-agents-artifacts/cloud-run-gmp-sidecar/cloud-run-gmp-sidecar:1.2.0"
}

variable "relay_replicas" {
  type        = number
  description = "Relay instances. 1 (the default): one instance exactly as without replication, and nothing below is created. 2 to 5: replicas coupled by the events topic (replication.tf, README \"Replication\"), Cloud Run min = max = this; every replica pays for every event, hence the bound."
  default     = 1
  validation {
    condition     = var.relay_replicas >= 1 && var.relay_replicas <= 5 && floor(var.relay_replicas) == var.relay_replicas
    error_message = "relay_replicas is a whole number from 1 to 5."
  }
}

variable "relay_events_retention_hours" {
  type        = number
  description = "With relay_replicas > 1: how long the events topic keeps every message, so that a replica started empty can restore the newest snapshot and replay the topic from before it. Must cover the snapshot interval plus the seek margin (checked at plan); 7 days by default, for snapshots that failed for a while (alert SnapshotOlderThanRetention). Retained messages are billed (README Replication)."
  default     = 168
  validation {
    condition     = var.relay_events_retention_hours >= 24 && var.relay_events_retention_hours <= 744
    error_message = "relay_events_retention_hours is from 24 (one day) to 744 (Pub/Sub's 31 days)."
  }
}

variable "relay_on_bus_outage" {
  type        = string
  description = "With relay_replicas > 1: what an EVENT's OK says when the events topic has not confirmed it within ack_timeout (RELAY_REPLICATION__ON_BUS_OUTAGE): \"refuse\" (OK false \"error:\", nothing acknowledged is lost with an instance) or \"local\" (OK true after the local commit: available, but an instance lost during the outage loses what it acknowledged)."
  default     = "refuse"
  validation {
    condition     = contains(["refuse", "local"], var.relay_on_bus_outage)
    error_message = "relay_on_bus_outage is \"refuse\" or \"local\"."
  }
}

variable "relay_memory_mib" {
  type        = number
  description = "Memory of each relay instance's relay container (MiB): the process, and the store in its in-memory volume (relay_store_mib), which Cloud Run counts against it. With the relay's 2 CPUs, at most 8192."
  default     = 2048
  validation {
    condition     = var.relay_memory_mib >= 1024 && var.relay_memory_mib <= 8192 && floor(var.relay_memory_mib) == var.relay_memory_mib
    error_message = "relay_memory_mib is a whole number from 1024 to 8192 (Cloud Run's most for 2 CPUs)."
  }
}

variable "relay_store_mib" {
  type        = number
  description = "Size of the relay's in-memory volume (tmpfs) at /data, which holds its LMDB store (MiB). The relay caps the store at 90 % of it ([data] max_size, msr_relay_store_max_bytes) and refuses EVENTs past the cap; alert RelayStoreNearlyFull at 85 % of the cap (runbook 5.15). At most relay_memory_mib - 768 (checked at plan): the process needs the rest (README \"Reliability\", the memory bound)."
  default     = 1024
  validation {
    condition     = var.relay_store_mib >= 128 && floor(var.relay_store_mib) == var.relay_store_mib
    error_message = "relay_store_mib is a whole number, at least 128."
  }
}

variable "relay_store_write_map" {
  type        = bool
  description = "Write the store through LMDB's writable map ([data] write_map, RELAY_DATA__WRITE_MAP): faster ingest for a store in memory (README \"Operations\"). The relay refuses to start with it when /data is not a tmpfs (exit 2, saying so): set false then."
  default     = true
}
