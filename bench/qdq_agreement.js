// onnxruntime-node against convnet on an ONNX file `convnet export` wrote from a run (a QDQ file from
// a quantized run): top-1 of both on a dataset's test images, and how often they agree. Dev-only,
// like bench/compare_ort.js; the preprocessing comes from the file's convnet.normalization metadata.
// Step 1 writes the normalised test images for convnet:
//   node bench/qdq_agreement.js MODEL.onnx --data DIR --write-input x.safetensors
//   build/convnet forward MODEL.onnx --images x.safetensors --out y.safetensors --precision int8
// Step 2 runs onnxruntime and compares with convnet's logits (prints one JSON line):
//   node bench/qdq_agreement.js MODEL.onnx --data DIR --convnet y.safetensors
'use strict';
const fs = require('fs');
const path = require('path');
const zlib = require('zlib');
const ort = require(path.join(__dirname, 'node_modules', 'onnxruntime-node'));

function parseArgs(argv) {
  const args = {model: argv[0], data: '/usr/share/datasets/fashion-mnist', 'write-input': null, convnet: null,
                batch: 500, threads: 2, optimization: 'all'};
  for (let i = 1; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, '');
    if (!(key in args) || i + 1 >= argv.length) throw new Error(`bad option ${argv[i]}`);
    args[key] = typeof args[key] === 'number' ? Number(argv[i + 1]) : argv[i + 1];
  }
  if (!args.model || (!args['write-input'] && !args.convnet)) {
    throw new Error('MODEL.onnx and --write-input FILE or --convnet FILE are required');
  }
  return args;
}

// ModelProto.metadata_props (field 14: key = 1, value = 2), read with a minimal protobuf walk.
function metadata(bytes) {
  const out = {};
  const walk = (buf, onField) => {
    let i = 0;
    const varint = () => {
      let v = 0, shift = 1;
      for (;;) {
        const b = buf[i++];
        v += (b & 0x7f) * shift;
        shift *= 128;
        if (b < 0x80) return v;
      }
    };
    while (i < buf.length) {
      const tag = varint(), field = Math.floor(tag / 8), wire = tag % 8;
      if (wire === 0) varint();
      else if (wire === 1) i += 8;
      else if (wire === 5) i += 4;
      else if (wire === 2) {
        const n = varint();
        onField(field, buf.subarray(i, i + n));
        i += n;
      } else throw new Error(`unexpected protobuf wire type ${wire}`);
    }
  };
  walk(bytes, (field, sub) => {
    if (field !== 14) return;
    const entry = {};
    walk(sub, (f, s) => { entry[f] = s.toString('utf8'); });
    out[entry[1]] = entry[2];
  });
  return out;
}

function readIdx(file) {
  const buf = zlib.gunzipSync(fs.readFileSync(file));
  const dims = buf[3];
  const shape = [];
  for (let d = 0; d < dims; ++d) shape.push(buf.readUInt32BE(4 + 4 * d));
  return {shape, data: buf.subarray(4 + 4 * dims)};
}

function normalisedImages(dir, norm) {
  const images = readIdx(path.join(dir, 't10k-images-idx3-ubyte.gz'));
  const labels = readIdx(path.join(dir, 't10k-labels-idx1-ubyte.gz'));
  const [n, h, w] = images.shape;
  if (norm.mode !== 'per_channel' || norm.mean.length !== 1) throw new Error('expects one-channel per_channel data');
  const x = new Float32Array(n * h * w);
  for (let i = 0; i < x.length; ++i) x[i] = (images.data[i] / 255 - norm.mean[0]) / norm.std[0];
  return {x, dims: [n, 1, h, w], labels: labels.data};
}

function writeSafetensors(file, name, data, shape) {
  const header = Buffer.from(JSON.stringify({[name]: {dtype: 'F32', shape, data_offsets: [0, data.byteLength]}}));
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(header.length));
  fs.writeFileSync(file, Buffer.concat([length, header, Buffer.from(data.buffer, data.byteOffset, data.byteLength)]));
}

function readSafetensors(file, name) {
  const buf = fs.readFileSync(file);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8'))[name];
  const [begin, end] = header.data_offsets;
  const bytes = buf.subarray(8 + n + begin, 8 + n + end);
  return {shape: header.shape, data: new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length))};
}

function argmax(data, row, classes) {
  let best = 0;
  for (let k = 1; k < classes; ++k) if (data[row * classes + k] > data[row * classes + best]) best = k;
  return best;
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const meta = metadata(fs.readFileSync(args.model));
  if (!meta['convnet.normalization']) throw new Error(`${args.model} has no convnet.normalization metadata`);
  const {x, dims, labels} = normalisedImages(args.data, JSON.parse(meta['convnet.normalization']));
  if (args['write-input']) {
    writeSafetensors(args['write-input'], 'input', x, dims);
    return;
  }
  const session = await ort.InferenceSession.create(args.model, {
    executionProviders: ['cpu'], graphOptimizationLevel: args.optimization, intraOpNumThreads: args.threads,
  });
  const theirs = readSafetensors(args.convnet, 'output');
  const [n] = dims, per = dims[1] * dims[2] * dims[3], classes = theirs.shape[1];
  let ortRight = 0, convnetRight = 0, agree = 0;
  for (let start = 0; start < n; start += args.batch) {
    const count = Math.min(args.batch, n - start);
    const input = new ort.Tensor('float32', x.subarray(start * per, (start + count) * per), [count, ...dims.slice(1)]);
    const out = (await session.run({[session.inputNames[0]]: input}))[session.outputNames[0]].data;
    for (let i = 0; i < count; ++i) {
      const a = argmax(out, i, classes), b = argmax(theirs.data, start + i, classes);
      ortRight += a === labels[start + i];
      convnetRight += b === labels[start + i];
      agree += a === b;
    }
  }
  const version = require(path.join(__dirname, 'node_modules', 'onnxruntime-node', 'package.json')).version;
  console.log(JSON.stringify({model: args.model, optimization: args.optimization, images: n, onnxruntime_top1: ortRight / n,
                              convnet_top1: convnetRight / n, top1_agreement: agree / n, onnxruntime: version}));
}

main().catch((e) => {
  console.error(`qdq_agreement.js: ${e.message}`);
  process.exit(1);
});
