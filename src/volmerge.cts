#!/usr/bin/env -S -u NODE_EXTRA_CA_CERTS node
// The `volmerge` command (package.json's bin): runs the bundled CLI beside it, from V8's code cache when it can.
// The line above drops NODE_EXTRA_CA_CERTS before node starts: node 20 parses that whole CA bundle at start-up (about
// 40 ms on a 2-core VM, more than the rest of the CLI's start), and volmerge never trusts a CA from it: every TLS
// connection it makes names its CA with --tls-ca. `env -S` needs GNU coreutils 8.30 or later (Debian 10, RHEL 8).
import { join } from 'node:path';
import { requireWithCodeCache } from './bundle-loader.cjs';

requireWithCodeCache(join(__dirname, 'volmerge-bundle.cjs'));
