# The mailbox API's PostgreSQL: Cloud SQL, no public address in use (Cloud Run reaches it through its
# Cloud SQL connection, authorized by roles/cloudsql.client), automated backups with point-in-time
# recovery, deletion protection. The password is generated here and exists only in Terraform's state and
# in Secret Manager (secrets.tf), inside the DATABASE_URL the service reads.
resource "google_sql_database_instance" "mailbox" {
  name                = "msr-mailbox-pg"
  region              = var.region
  database_version    = "POSTGRES_17"
  deletion_protection = var.deletion_protection

  settings {
    tier              = var.db_tier
    edition           = "ENTERPRISE"
    availability_type = "ZONAL"
    disk_autoresize   = true

    backup_configuration {
      enabled                        = true
      point_in_time_recovery_enabled = true
      start_time                     = "03:00"
      transaction_log_retention_days = 7
      backup_retention_settings {
        retained_backups = 14
      }
    }

    ip_configuration {
      # A public address exists for the connector, but no network is authorized on it: only the Cloud SQL
      # connection (IAM-authorized, encrypted) gets in.
      ipv4_enabled = true
      ssl_mode     = "ENCRYPTED_ONLY"
    }

    # Room for every mailbox instance's pools (variables.tf: mailbox_max_instances).
    database_flags {
      name  = "max_connections"
      value = var.db_max_connections
    }

    deletion_protection_enabled = var.deletion_protection
  }
}

resource "google_sql_database" "mailbox" {
  name     = "mailbox"
  instance = google_sql_database_instance.mailbox.name
}

resource "random_password" "mailbox_db" {
  length  = 32
  special = false
}

resource "google_sql_user" "mailbox" {
  name     = "mailbox"
  instance = google_sql_database_instance.mailbox.name
  password = random_password.mailbox_db.result
}

# Relay snapshots (DESIGN.md §4). Versioning keeps a deleted or overwritten snapshot for 7 days, in case
# of a bad prune; the relay itself keeps the newest few (RELAY_BACKUP__KEEP).
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
