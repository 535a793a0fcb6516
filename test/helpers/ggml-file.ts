/** Where things are in a ggml whisper file (f32/f16 tensors only), for tests that damage one. */
export interface GgmlLayout {
  hparams: number[];
  vocabOffset: number;
  tensors: Array<{ name: string; dims: number[]; type: number; headerOffset: number; dimsOffset: number; dataOffset: number }>;
}

export function parseGgml(b: Buffer): GgmlLayout {
  const hparams = Array.from({ length: 11 }, (_, i) => b.readInt32LE(4 + 4 * i));
  let at = 48;
  const nMel = b.readInt32LE(at);
  const nFft = b.readInt32LE(at + 4);
  at += 8 + nMel * nFft * 4;
  const vocabOffset = at;
  const nTokens = b.readInt32LE(at);
  at += 4;
  for (let i = 0; i < nTokens; i++) at += 4 + b.readUInt32LE(at);
  const tensors: GgmlLayout['tensors'] = [];
  while (at < b.length) {
    const headerOffset = at;
    const nDims = b.readInt32LE(at);
    const nameLength = b.readInt32LE(at + 4);
    const type = b.readInt32LE(at + 8);
    const dimsOffset = at + 12;
    const dims = Array.from({ length: nDims }, (_, i) => b.readInt32LE(dimsOffset + 4 * i));
    const nameOffset = dimsOffset + 4 * nDims;
    const name = b.toString('utf8', nameOffset, nameOffset + nameLength);
    const dataOffset = nameOffset + nameLength;
    if (type !== 0 && type !== 1) throw new Error(`parseGgml reads f32/f16 files only (${name} has type ${type})`);
    const bytes = dims.reduce((a, d) => a * d, 1) * (type === 0 ? 4 : 2);
    tensors.push({ name, dims, type, headerOffset, dimsOffset, dataOffset });
    at = dataOffset + bytes;
  }
  return { hparams, vocabOffset, tensors };
}
