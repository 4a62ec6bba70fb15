# Mirrors the npm scripts so operators can use either.
# `make deploy PROJECT_ID=… [REGION=…]`: test, build, push and deploy both services with Cloud Build, after
# `terraform -chdir=infra/terraform apply` has made the project ready (docs/runbook.md).
.PHONY: install build test start bench lint clean deploy

REGION ?= europe-west1

install:
	npm install

build:
	npm run build

test:
	npm test

start:
	npm start

bench:
	npm run bench

lint:
	npm run lint

clean:
	npm run clean

deploy:
	@test -n "$(PROJECT_ID)" || { echo "make deploy: set PROJECT_ID (the Google Cloud project terraform applied to)" >&2; exit 2; }
	gcloud builds submit --project "$(PROJECT_ID)" --region "$(REGION)" --config cloudbuild.yaml --substitutions "_REGION=$(REGION)" .
