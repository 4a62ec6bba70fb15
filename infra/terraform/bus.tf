# The hint bus (DESIGN.md §5): one topic per hint kind; 445 hints carry the group as ordering key. Push
# subscriptions deliver to the mailbox API with an OIDC token of msr-hints-push.

resource "google_pubsub_topic" "hints" {
  for_each                   = toset(["mls-group-hints", "noise-dm-hints"])
  name                       = each.key
  message_retention_duration = "604800s"
}

resource "google_pubsub_subscription" "mailbox_hints" {
  for_each                = google_pubsub_topic.hints
  name                    = "mailbox-${each.key}"
  topic                   = each.value.id
  ack_deadline_seconds    = 30
  enable_message_ordering = each.key == "mls-group-hints"

  push_config {
    push_endpoint = local.push_endpoint
    oidc_token {
      service_account_email = google_service_account.hints_push.email
      audience              = local.push_audience
    }
  }

  retry_policy {
    minimum_backoff = "1s"
    maximum_backoff = "60s"
  }

  # Malformed hints are acknowledged by the mailbox API; what it cannot take after 10 tries (a database
  # outage longer than the retries) is parked instead of retried forever.
  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.hints_dead_letter.id
    max_delivery_attempts = 10
  }
}

resource "google_pubsub_topic" "hints_dead_letter" {
  name = "mailbox-hints-dead-letter"
}

# Where an operator reads dead-lettered hints to inspect and replay them (docs/runbook.md). Kept 7 days.
resource "google_pubsub_subscription" "dead_letters" {
  name                       = "mailbox-hints-dead-letter-sub"
  topic                      = google_pubsub_topic.hints_dead_letter.id
  ack_deadline_seconds       = 60
  message_retention_duration = "604800s"
  expiration_policy {
    ttl = ""
  }
}
