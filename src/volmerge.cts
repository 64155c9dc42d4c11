#!/usr/bin/env node
// The `volmerge` command (package.json's bin): runs the bundled CLI beside it, from V8's code cache when it can.
import { join } from 'node:path';
import { requireWithCodeCache } from './bundle-loader.cjs';

requireWithCodeCache(join(__dirname, 'volmerge-bundle.cjs'));
