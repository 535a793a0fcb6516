import { statSync } from 'node:fs';
import path from 'node:path';

import type { ModelListing } from '../dialect.js';

/** The name OpenAI's clients ask for by default; every name maps to the loaded model anyway. */
export const defaultOpenAiModel = 'whisper-1';

/** The loaded model's own name: its file name without `ggml-` and `.bin` (`tiny.en-q5_1`). */
export function loadedModelName(modelPath: string): string {
  return path
    .basename(modelPath)
    .replace(/^ggml-/, '')
    .replace(/\.bin$/, '');
}

/**
 * The device's models as OpenAI's clients list them (`GET /v1/models`, `object: "list"`
 * with `data`, beside IBM's `models` in the same body): `whisper-1`, which clients ask for
 * by default, and the loaded model by its own name; both are the one loaded model.
 */
export function openAiModelListing(modelPath: string): ModelListing {
  const names = [defaultOpenAiModel, loadedModelName(modelPath)];
  const model = (id: string) => {
    let created = 0;
    try {
      created = Math.floor(statSync(modelPath).mtimeMs / 1000);
    } catch {
      // the file went away after loading: the time is unknown
    }
    return { id, object: 'model', created, owned_by: 'earshot' };
  };
  return {
    listMembers: () => ({ object: 'list', data: names.map(model) }),
    model: (name) => (names.includes(name) ? model(name) : undefined),
  };
}
