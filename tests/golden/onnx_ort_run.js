// Runs one ONNX file in onnxruntime-node (bench/node_modules) on a raw float32 input and writes the
// first output as raw float32: the onnxruntime side of tests/golden/onnx_compare.py.
// Usage: node tests/golden/onnx_ort_run.js MODEL.onnx INPUT.f32 N,C,H,W OUTPUT.f32
'use strict';
const fs = require('fs');
const path = require('path');
const ort = require(path.join(__dirname, '..', '..', 'bench', 'node_modules', 'onnxruntime-node'));

async function main() {
  const [model, inputPath, dimsText, outputPath] = process.argv.slice(2);
  const dims = dimsText.split(',').map(Number);
  const bytes = fs.readFileSync(inputPath);
  const data = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4);
  const session = await ort.InferenceSession.create(model, {executionProviders: ['cpu'], intraOpNumThreads: 1});
  const result = await session.run({[session.inputNames[0]]: new ort.Tensor('float32', data, dims)});
  const out = result[session.outputNames[0]].data;
  fs.writeFileSync(outputPath, Buffer.from(out.buffer, out.byteOffset, out.byteLength));
}

main().catch((e) => {
  console.error(`onnx_ort_run.js: ${e.message}`);
  process.exit(1);
});
