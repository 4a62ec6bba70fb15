# Mirrors the npm scripts so operators can use either.
.PHONY: install build test start bench lint clean

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
