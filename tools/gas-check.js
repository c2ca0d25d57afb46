#!/usr/bin/env node
// Compares .gas-snapshot with the reference AuthCaptureEscrow's own benchmark under the same
// deploy settings (via-IR, optimizer 100,000 runs; ../shared/spec/escrow-interface.md) and fails
// unless every operation costs less. Prints the ratio of each, and the goal (<= 85%).
'use strict';
const fs = require('fs');
const path = require('path');

const REFERENCE = {
  authorize: 149616,
  capture: 65001,
  charge: 156047,
  reclaim: 51421,
  refund: 73090,
  void: 51595,
};
const GOAL = 0.85;

const snapshot = fs.readFileSync(path.join(__dirname, '..', '.gas-snapshot'), 'utf8');
const measured = {};
for (const line of snapshot.split('\n')) {
  const m = line.match(/:test_benchmark_(\w+)\(\) \(gas: (\d+)\)/);
  if (m) measured[m[1]] = Number(m[2]);
}

let failed = false;
console.log('operation   ours      reference  ratio');
for (const [op, ref] of Object.entries(REFERENCE)) {
  const ours = measured[op];
  if (ours === undefined) {
    console.log(`${op.padEnd(11)} missing from .gas-snapshot`);
    failed = true;
    continue;
  }
  const ratio = ours / ref;
  const verdict = ours < ref ? (ratio <= GOAL ? 'goal met' : 'below reference') : 'NOT BELOW REFERENCE';
  if (ours >= ref) failed = true;
  console.log(`${op.padEnd(11)} ${String(ours).padEnd(9)} ${String(ref).padEnd(10)} ${(ratio * 100).toFixed(1)}%  ${verdict}`);
}
if (failed) {
  console.error('gas check failed: every operation must cost less than the reference');
  process.exit(1);
}
