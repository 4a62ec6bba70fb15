#!/usr/bin/env node
// `msr-relay`: what npm links; it builds the repository first when needed (scripts/cli-launcher.mjs).
import { launch } from '../../../scripts/cli-launcher.mjs'

await launch('msr-relay', new URL('../dist/src/cli.js', import.meta.url))
