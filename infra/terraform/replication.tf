# Relay replicas (README "Replication", issue 22), opt-in: with relay_replicas = 1 (the default) nothing in
# this file exists and the relay is the one instance it always was. With 2 to 5, Cloud Run runs that many
# instances of msr-relay (services.tf: min = max = relay_replicas, session affinity), each with its own LMDB,
# coupled by the events topic below: every accepted event is published there before its OK, and every
# replica applies the others' events from its own subscription.
#
# Subscriptions are per boot. A Cloud Run instance has no stable identity, so each replica starts with a
# random replica id and creates its own subscription `msr-relay-events-<id>` (RELAY_REPLICATION__SUBSCRIPTION
# = auto), and deletes it at a clean stop. Subscriptions made here for a fixed count would not do: Cloud Run
# cannot give instance k the k-th one, and two instances overlapping during a deploy or a replacement would
# split one subscription's messages between them, each missing the other's half. (On GKE a StatefulSet gives
# stable ids, and there the subscriptions are made in advance: docs/gke.md.)
#
# IAM, the narrowest that lets a replica make its own subscription (iam.tf's rule: each grant on the
# narrowest resource that takes it):
#   on the events topic  roles/pubsub.publisher (publish), roles/pubsub.subscriber (its one use on a topic:
#                        pubsub.topics.attachSubscription, so subscriptions can be made on this topic only)
#   on the project       a custom role with exactly pubsub.subscriptions.create, .consume, .delete and .get.
#                        Pub/Sub checks `create` on the project (a subscription belongs to the project, not
#                        to the topic), and `consume`/`delete` on a subscription that does not exist when
#                        Terraform runs, so no finer resource takes them; Pub/Sub's IAM conditions cannot
#                        match resource names (only Pub/Sub Lite's can), so no prefix condition either.
# What this allows beyond the relay's own subscriptions: pulling from or deleting the project's other
# subscriptions (the mailbox's hint subscriptions, which carry hints the relay itself publishes). What it
# does not, unlike roles/pubsub.editor: creating or deleting topics, publishing elsewhere, changing any
# subscription (push endpoints, dead-lettering), seeing or setting IAM policies. Operators who want even that
# gone run the relay's topic in a project of its own, or the GKE variant (no project-level grant at all).

locals {
  replication = var.relay_replicas > 1
  # [backup] interval of the relay (services.tf), and the margin a replica started empty seeks its
  # subscription back before the newest snapshot's time (README "Replication"): the topic must keep at
  # least their sum, or a new replica cannot replay what the snapshot misses.
  relay_backup_interval_minutes = 5
  relay_seek_margin_minutes     = 10
  relay_events_retention_sec    = var.relay_events_retention_hours * 3600
  # The [replication] section of the relay, as environment variables; empty without replicas.
  relay_replication_env = { for name, value in {
    RELAY_REPLICATION__TOPIC         = one(google_pubsub_topic.relay_events[*].name)
    RELAY_REPLICATION__SUBSCRIPTION  = "auto"
    RELAY_REPLICATION__PROJECT_ID    = var.project_id
    RELAY_REPLICATION__ON_BUS_OUTAGE = var.relay_on_bus_outage
  } : name => value if local.replication }
}

resource "google_pubsub_topic" "relay_events" {
  count                      = local.replication ? 1 : 0
  name                       = "msr-relay-events"
  message_retention_duration = "${local.relay_events_retention_sec}s"
  labels                     = { service = "msr-relay" }

  lifecycle {
    precondition {
      condition     = local.relay_events_retention_sec >= (local.relay_backup_interval_minutes + local.relay_seek_margin_minutes) * 60
      error_message = "relay_events_retention_hours must cover the relay's snapshot interval plus the seek margin: a replica started empty replays the topic from before the newest snapshot."
    }
  }
}

resource "google_pubsub_topic_iam_member" "relay_publishes_events" {
  count  = local.replication ? 1 : 0
  topic  = google_pubsub_topic.relay_events[0].name
  role   = "roles/pubsub.publisher"
  member = "serviceAccount:${google_service_account.relay.email}"
}

resource "google_pubsub_topic_iam_member" "relay_attaches_to_events" {
  count  = local.replication ? 1 : 0
  topic  = google_pubsub_topic.relay_events[0].name
  role   = "roles/pubsub.subscriber"
  member = "serviceAccount:${google_service_account.relay.email}"
}

resource "google_project_iam_custom_role" "relay_replica_subscriptions" {
  count       = local.replication ? 1 : 0
  role_id     = "msrRelayReplicaSubscriptions"
  title       = "msr relay replica subscriptions"
  description = "A relay replica makes, pulls and deletes its own subscription to the events topic (attaching needs pubsub.topics.attachSubscription, granted on that topic only)."
  permissions = ["pubsub.subscriptions.consume", "pubsub.subscriptions.create", "pubsub.subscriptions.delete", "pubsub.subscriptions.get"]
}

resource "google_project_iam_member" "relay_replica_subscriptions" {
  count   = local.replication ? 1 : 0
  project = var.project_id
  role    = google_project_iam_custom_role.relay_replica_subscriptions[0].name
  member  = "serviceAccount:${google_service_account.relay.email}"
}
