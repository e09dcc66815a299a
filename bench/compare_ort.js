// onnxruntime-node side of bench/compare: times inference of one ONNX file in this process and prints one
// JSON line (median ms per batch after warm-up). CPU execution provider, all graph optimisations,
// intra-op threads = --threads, one inter-op thread, sequential execution.
// Usage: node bench/compare_ort.js MODEL.onnx --batch B --input C,H,W --threads T --reps N --warmup W
'use strict';
const path = require('path');
const ort = require(path.join(__dirname, 'node_modules', 'onnxruntime-node'));

function parseArgs(argv) {
  const args = {model: argv[0], batch: 1, input: null, threads: 1, reps: 10, warmup: 2};
  for (let i = 1; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, '');
    if (!(key in args) || i + 1 >= argv.length) throw new Error(`compare_ort.js: bad option ${argv[i]}`);
    args[key] = key === 'input' ? argv[i + 1].split(',').map(Number) : Number(argv[i + 1]);
  }
  if (!args.model || !args.input) throw new Error('compare_ort.js: MODEL.onnx and --input C,H,W are required');
  return args;
}

function randomInput(count) {
  // Uniform in [-1, 1) from a fixed linear congruential generator: the same data on every run.
  const data = new Float32Array(count);
  let state = 2;
  for (let i = 0; i < count; ++i) {
    state = (state * 1103515245 + 12345) % 2147483648;
    data[i] = state / 1073741824 - 1;
  }
  return data;
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const session = await ort.InferenceSession.create(args.model, {
    executionProviders: ['cpu'], graphOptimizationLevel: 'all', executionMode: 'sequential',
    intraOpNumThreads: args.threads, interOpNumThreads: 1,
  });
  const dims = [args.batch, ...args.input];
  const input = new ort.Tensor('float32', randomInput(dims.reduce((a, b) => a * b, 1)), dims);
  const feeds = {[session.inputNames[0]]: input};
  for (let i = 0; i < args.warmup; ++i) await session.run(feeds);
  const ms = [];
  for (let i = 0; i < args.reps; ++i) {
    const start = process.hrtime.bigint();
    await session.run(feeds);
    ms.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  ms.sort((a, b) => a - b);
  const version = require(path.join(__dirname, 'node_modules', 'onnxruntime-node', 'package.json')).version;
  console.log(JSON.stringify({ms: ms[Math.floor(ms.length / 2)], min_ms: ms[0], reps: args.reps,
                              onnxruntime: version}));
}

main().catch((e) => {
  console.error(`compare_ort.js: ${e.message}`);
  process.exit(1);
});
