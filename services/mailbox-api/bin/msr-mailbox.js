#!/usr/bin/env node
// `msr-mailbox`: what npm links; it builds the repository first when needed (scripts/cli-launcher.mjs).
import { launch } from '../../../scripts/cli-launcher.mjs'

await launch('msr-mailbox', new URL('../dist/src/cli.js', import.meta.url))
