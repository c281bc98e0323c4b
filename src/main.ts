#!/usr/bin/env node
/** The `vtpmd` executable: argv → cli/. */
import { main } from './cli/index.js';

void main(process.argv.slice(2));
