output "gateway_ip" {
  description = "The load balancer's address: point the domain's DNS A record here."
  value       = google_compute_global_address.gateway.address
}

output "relay_url" {
  description = "What Nostr clients connect to (also the relay's NIP-42 public_url)."
  value       = local.relay_public_url
}

output "api_url" {
  description = "Base URL of the mailbox API (its PUBLIC_URL; NIP-98 `u` tags start with it)."
  value       = "${local.api_public_url}/api/v1"
}

output "relay_service_url" {
  description = "The relay's own run.app URL (closed to the internet: ingress is the load balancer only)."
  value       = google_cloud_run_v2_service.relay.uri
}

output "mailbox_service_url" {
  description = "The mailbox API's own run.app URL (closed to the internet; Pub/Sub pushes hints to it)."
  value       = google_cloud_run_v2_service.mailbox_api.uri
}

output "hint_topics" {
  description = "The hint bus's topics, by hint kind."
  value       = { for name, topic in google_pubsub_topic.hints : name => topic.id }
}

output "dead_letter_subscription" {
  description = "Where undeliverable hints wait for inspection and replay (docs/runbook.md)."
  value       = google_pubsub_subscription.dead_letters.id
}

output "image_repository" {
  description = "Artifact Registry path the images are pushed to."
  value       = "${var.region}-docker.pkg.dev/${var.project_id}/${google_artifact_registry_repository.msr.repository_id}"
}

output "deployer_service_account" {
  description = "The identity Cloud Build deploys as (cloudbuild.yaml)."
  value       = google_service_account.deployer.email
}

output "relay_events_topic" {
  description = "With relay_replicas > 1: the topic the relay replicas share (each replica's subscription is msr-relay-events-<replica id>); null with one instance."
  value       = one(google_pubsub_topic.relay_events[*].id)
}
