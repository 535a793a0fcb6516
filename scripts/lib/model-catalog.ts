// The models scripts/download-model fetches, each pinned by SHA-256 (and byte size).
//
// Names and URLs follow whisper.cpp's own download scripts
// (node_modules/nodejs-whisper/cpp/whisper.cpp/models/download-ggml-model.sh and
// download-vad-model.sh): ggml-<name>.bin under
//   https://huggingface.co/ggerganov/whisper.cpp/resolve/main/   (whisper models)
//   https://huggingface.co/ggml-org/whisper-vad/resolve/main/    (Silero VAD)
// f16 models have no suffix (tiny.en), quantized ones end in -q5_1, -q8_0, -q5_0.
//
// Where each hash comes from is written next to it (`source`). "HF page" means the Hugging
// Face file page of ggerganov/whisper.cpp, whose "Git LFS Details" give the SHA-256 of the
// stored object; the revision named is the page's, and the commit after it the last one
// that changed the file (the same commit on main means the same bytes). Sizes are the
// LFS object sizes, as pinned by projects that download from the same repository at
// revision 5359861c739e955e79d9a303bcbc70fb988958b1 and, where noted, by LFS pointers.
// `sha1` is whisper.cpp's own checksum (models/README.md and the Hugging Face model
// card), pinned as a second check only where the SHA-256 did not come from an HF page.

/** One downloadable model. */
export interface CatalogEntry {
  /** The name users type: `tiny.en-q5_1`, `silero-v5.1.2`. */
  name: string;
  /** The file name on the host and on disk: `ggml-tiny.en-q5_1.bin`. */
  file: string;
  /** Where it is downloaded from by default. */
  url: string;
  /** Lower-case hex SHA-256 of the file, or null when none is known (then refused unless told otherwise). */
  sha256: string | null;
  /** Optional second checksum (lower-case hex SHA-1). */
  sha1?: string | null;
  /** Size in bytes, when known: checked against what the server offers before downloading. */
  size?: number | null;
  /** Where the checksum came from. */
  source?: string;
}

/** The catalog file format accepted by `--catalog` / EARSHOT_MODEL_CATALOG. */
export interface CatalogFile {
  models: CatalogEntry[];
}

export const WHISPER_BASE_URL = 'https://huggingface.co/ggerganov/whisper.cpp/resolve/main';
export const VAD_BASE_URL = 'https://huggingface.co/ggml-org/whisper-vad/resolve/main';

const HF = 'HF page huggingface.co/ggerganov/whisper.cpp/blob';

function whisper(name: string, sha256: string, size: number, source: string, sha1?: string): CatalogEntry {
  const file = `ggml-${name}.bin`;
  const entry: CatalogEntry = { name, file, url: `${WHISPER_BASE_URL}/${file}`, sha256, size, source };
  if (sha1 !== undefined) entry.sha1 = sha1;
  return entry;
}

function vad(name: string, sha256: string, size: number, source: string): CatalogEntry {
  const file = `ggml-${name}.bin`;
  return { name, file, url: `${VAD_BASE_URL}/${file}`, sha256, size, source };
}

/** The built-in catalog. */
export const MODEL_CATALOG: readonly CatalogEntry[] = [
  // tiny
  whisper('tiny', 'be07e048e1e599ad46341c8d2a135645097a538221678b7acdd1b1919c6e1b21', 77_691_713, `${HF}/refs%2Fpr%2F3/ggml-tiny.bin (last change 80da2d8)`),
  whisper('tiny-q5_1', '818710568da3ca15689e31a743197b520007872ff9576237bda97bd1b469c3d7', 32_152_673, `${HF}/main/ggml-tiny-q5_1.bin (f281eb4)`),
  whisper('tiny-q8_0', 'c2085835d3f50733e2ff6e4b41ae8a2b8d8110461e18821b09a15c40c42d1cca', 43_537_433, `${HF}/main/ggml-tiny-q8_0.bin (0b364b5)`),
  whisper(
    'tiny.en',
    '921e4cf8686fdd993dcd081a5da5b6c365bfde1162e72b08d75ac75289920b1f',
    77_704_715,
    `${HF}/refs%2Fpr%2F5/ggml-tiny.en.bin (last change 80da2d8)`,
  ),
  whisper(
    'tiny.en-q5_1',
    'c77c5766f1cef09b6b7d47f21b546cbddd4157886b3b5d6d4f709e91e66c7c2b',
    32_166_155,
    `${HF}/refs%2Fpr%2F14/ggml-tiny.en-q5_1.bin (last change f281eb4, as on main for the other q5_1 files)`,
  ),
  whisper(
    'tiny.en-q8_0',
    '5bc2b3860aa151a4c6e7bb095e1fcce7cf12c7b020ca08dcec0c6d018bb7dd94',
    43_550_795,
    `${HF}/0b364b566045a405be7225ee1e415a073e04da77/ggml-tiny.en-q8_0.bin (last change d153938, the only commit in the file's history at later revisions)`,
  ),
  // base
  whisper(
    'base',
    '60ed5bc3dd14eea856493d334349b405782ddcaf0028d4b5df4088345fba2efe',
    147_951_465,
    `${HF}/98aa99a0a9db05ae2342309f5096248665f7cba3/ggml-base.bin (last change 80da2d8)`,
  ),
  whisper('base-q5_1', '422f1ae452ade6f30a004d7e5c6a43195e4433bc370bf23fac9cc591f01a8898', 59_707_625, `${HF}/main/ggml-base-q5_1.bin (f281eb4)`),
  whisper(
    'base-q8_0',
    'c577b9a86e7e048a0b7eada054f4dd79a56bbfa911fbdacf900ac5b567cbb7d9',
    81_768_585,
    `${HF}/main/ggml-base-q8_0.bin (0b364b5); size from an LFS pointer of the same object`,
  ),
  whisper(
    'base.en',
    'a03779c86df3323075f5e796cb2ce5029f00ec8869eee3fdfb897afe36c6d002',
    147_964_211,
    `${HF}/refs%2Fpr%2F5/ggml-base.en.bin (last change 80da2d8)`,
  ),
  whisper('base.en-q5_1', '4baf70dd0d7c4247ba2b81fafd9c01005ac77c2f9ef064e00dcf195d0e2fdd2f', 59_721_011, `${HF}/main/ggml-base.en-q5_1.bin (f281eb4)`),
  whisper(
    'base.en-q8_0',
    'a4d4a0768075e13cfd7e19df3ae2dbc4a68d37d36a7dad45e8410c9a34f8c87e',
    81_781_811,
    'no HF page found: three independent projects that download ggerganov/whisper.cpp pin this SHA-256 and size; ' + 'SHA-1 from the Hugging Face model card',
    'bb1574182e9b924452bf0cd1510ac034d323e948',
  ),
  // small
  whisper(
    'small',
    '1be3a9b2063867b937e64e2ec7483364a79917e157fa98c5d94b5c1fffea987b',
    487_601_967,
    'HF page of macoron/whisper.cpp (a copy of the repository with the same commit 80da2d8) and several projects ' +
      'that pin ggerganov/whisper.cpp revisions; SHA-1 from whisper.cpp models/README.md',
    '55356645c2b361a969dfd0ef2c5a50d530afd8d5',
  ),
  whisper('small-q5_1', 'ae85e4a935d7a567bd102fe55afc16bb595bdb618e11b2fc7591bc08120411bb', 190_085_487, `${HF}/main/ggml-small-q5_1.bin (f281eb4)`),
  whisper(
    'small-q8_0',
    '49c8fb02b65e6049d5fa6c04f81f53b867b5ec9540406812c643f177317f779f',
    264_464_607,
    `${HF}/main/ggml-small-q8_0.bin (0b364b5); size from an LFS pointer of the same object`,
  ),
  whisper(
    'small.en',
    'c6138d6d58ecc8322097e0f987c32f1be8bb0a18532a3f88f734d1bbf9c41e5d',
    487_614_201,
    `${HF}/refs%2Fpr%2F15/ggml-small.en.bin (last change 80da2d8)`,
  ),
  whisper(
    'small.en-q5_1',
    'bfdff4894dcb76bbf647d56263ea2a96645423f1669176f4844a1bf8e478ad30',
    190_098_681,
    `${HF}/refs%2Fpr%2F14/ggml-small.en-q5_1.bin (last change f281eb4)`,
  ),
  whisper('small.en-q8_0', '67a179f608ea6114bd3fdb9060e762b588a3fb3bd00c4387971be4d177958067', 264_477_561, `${HF}/main/ggml-small.en-q8_0.bin (0b364b5)`),
  // medium and large-v3-turbo: too slow on a Pi 4, listed for the Pi 5 with 8 GB.
  whisper(
    'medium',
    '6c14d5adee5f86394037b4e4e8b59f1673b6cee10e3cf0b11bbdbee79c156208',
    1_533_763_059,
    `${HF}/refs%2Fpr%2F19/ggml-medium.bin (last change 80da2d8)`,
  ),
  whisper('medium-q5_0', '19fea4b380c3a618ec4723c3eef2eb785ffba0d0538cf43f8f235e7b3b34220f', 539_212_467, `${HF}/main/ggml-medium-q5_0.bin (f281eb4)`),
  whisper(
    'medium-q8_0',
    '42a1ffcbe4167d224232443396968db4d02d4e8e87e213d3ee2e03095dea6502',
    823_369_779,
    `${HF}/0b364b566045a405be7225ee1e415a073e04da77/ggml-medium-q8_0.bin (0b364b5); size from an LFS pointer`,
  ),
  whisper(
    'large-v3-turbo',
    '1fc70f774d38eb169993ac391eea357ef47c88757ef72ee5943879b7e8e2bc69',
    1_624_555_275,
    'LFS pointer in HF commit huggingface.co/ggerganov/whisper.cpp/commit/98aa99a0a9db05ae2342309f5096248665f7cba3',
  ),
  whisper(
    'large-v3-turbo-q5_0',
    '394221709cd5ad1f40c46e6031ca61bce88931e6e088c188294c6d5a55ffa7e2',
    574_041_195,
    'LFS pointer in HF commit huggingface.co/ggerganov/whisper.cpp/commit/98aa99a0a9db05ae2342309f5096248665f7cba3',
  ),
  whisper(
    'large-v3-turbo-q8_0',
    '317eb69c11673c9de1e1f0d459b253999804ec71ac4c23c17ecf5fbe24e259a1',
    874_188_075,
    `${HF}/0b364b566045a405be7225ee1e415a073e04da77/ggml-large-v3-turbo-q8_0.bin (0b364b5)`,
  ),
  // Silero VAD (whisper.cpp's VAD, used when EARSHOT_VAD_MODEL is set)
  vad(
    'silero-v5.1.2',
    '29940d98d42b91fbd05ce489f3ecf7c72f0a42f027e4875919a28fb4c04ea2cf',
    885_098,
    'no HF page found: two projects pin this SHA-256 and size for ggml-org/whisper-vad, one at revision ' + '9ffd54a1e1ee413ddf265af9913beaf518d1639b',
  ),
  vad(
    'silero-v6.2.0',
    '2aa269b785eeb53a82983a20501ddf7c1d9c48e33ab63a41391ac6c9f7fb6987',
    885_098,
    'no HF page found: the README of a byte-for-byte mirror of ggml-org/whisper-vad at 9ffd54a',
  ),
];

export class CatalogError extends Error {
  override name = 'CatalogError';
}

const SHA256_RE = /^[0-9a-f]{64}$/;
const SHA1_RE = /^[0-9a-f]{40}$/;
// Model names end up in file names and URLs: no separators, no dot-dot.
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** Is `name` safe to use in `ggml-<name>.bin`? */
export function isValidModelName(name: string): boolean {
  return NAME_RE.test(name) && !name.includes('..');
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'object') return Array.isArray(value) ? 'an array' : 'an object';
  return `${typeof value} ${String(value)}`;
}

function expect(ok: boolean, what: string, where: string, value: unknown): void {
  if (!ok) throw new CatalogError(`Expected ${what} for ${where} but received ${describe(value)}`);
}

/** Checks one entry (from a catalog file) and returns it normalised. */
export function validateEntry(raw: unknown, where: string, defaultBaseUrl = WHISPER_BASE_URL): CatalogEntry {
  expect(typeof raw === 'object' && raw !== null && !Array.isArray(raw), 'an object', where, raw);
  const r = raw as Record<string, unknown>;
  expect(typeof r.name === 'string' && isValidModelName(r.name), 'a model name (letters, digits, ".", "_", "-")', `${where}.name`, r.name);
  const name = r.name as string;
  const file = r.file ?? `ggml-${name}.bin`;
  expect(typeof file === 'string' && isValidModelName(file), 'a plain file name', `${where}.file`, r.file);
  const url = r.url ?? `${defaultBaseUrl}/${file as string}`;
  expect(typeof url === 'string' && /^https?:\/\//.test(url), 'an http(s) URL', `${where}.url`, r.url);
  const sha256 = r.sha256 ?? null;
  expect(sha256 === null || (typeof sha256 === 'string' && SHA256_RE.test(sha256.toLowerCase())), 'null or 64 hex digits', `${where}.sha256`, r.sha256);
  const sha1 = r.sha1 ?? null;
  expect(sha1 === null || (typeof sha1 === 'string' && SHA1_RE.test(sha1.toLowerCase())), 'null or 40 hex digits', `${where}.sha1`, r.sha1);
  const size = r.size ?? null;
  expect(size === null || (typeof size === 'number' && Number.isSafeInteger(size) && size >= 0), 'null or a byte count', `${where}.size`, r.size);
  const entry: CatalogEntry = {
    name,
    file: file as string,
    url: url as string,
    sha256: sha256 === null ? null : (sha256 as string).toLowerCase(),
    sha1: sha1 === null ? null : (sha1 as string).toLowerCase(),
    size: size as number | null,
  };
  if (typeof r.source === 'string') entry.source = r.source;
  return entry;
}

/** Parses a catalog file's text ({"models": [...]}); `origin` names it in messages. */
export function parseCatalog(text: string, origin: string): CatalogEntry[] {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new CatalogError(`${origin} is not valid JSON: ${(err as Error).message}`);
  }
  expect(typeof data === 'object' && data !== null && Array.isArray((data as CatalogFile).models), 'an object with a "models" array', origin, data);
  const entries = (data as CatalogFile).models.map((raw, i) => validateEntry(raw, `${origin} models[${i}]`));
  const seen = new Set<string>();
  for (const entry of entries) {
    if (seen.has(entry.name)) throw new CatalogError(`${origin} lists "${entry.name}" twice`);
    seen.add(entry.name);
  }
  return entries;
}

/**
 * The entry for `name` in `catalog`. `tiny.en-f16` is accepted for `tiny.en` (whisper.cpp
 * names f16 models without a suffix).
 */
export function findModel(catalog: readonly CatalogEntry[], name: string): CatalogEntry | undefined {
  const exact = catalog.find((e) => e.name === name);
  if (exact) return exact;
  if (name.endsWith('-f16')) return catalog.find((e) => e.name === name.slice(0, -4));
  return undefined;
}
