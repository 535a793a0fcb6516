import { type GroupApi, type OperationDoc, ref, type Schema } from '../http/openapi.js';

const str = { type: 'string' };
const num = { type: 'number' };
const obj = (properties: Record<string, Schema>, required: string[] = []): Schema => ({ type: 'object', properties, ...(required.length ? { required } : {}) });

/** OpenAI's schemas, as src/openai/views.ts writes them. */
const schemas: Record<string, Schema> = {
  OpenAiTranscriptionRequest: obj(
    {
      file: { type: 'string', contentMediaType: 'application/octet-stream' },
      model: { ...str, description: 'any name: the loaded model transcribes' },
      language: str,
      prompt: str,
      temperature: num,
      response_format: { type: 'string', enum: ['json', 'text', 'srt', 'vtt', 'verbose_json'], default: 'json' },
      'timestamp_granularities[]': { type: 'array', items: { type: 'string', enum: ['word', 'segment'] } },
      stream: { type: 'boolean' },
    },
    ['file', 'model'],
  ),
  OpenAiTranscription: obj({ text: str }, ['text']),
  OpenAiVerboseTranscription: obj(
    {
      task: str,
      language: str,
      duration: num,
      text: str,
      words: { type: 'array', items: obj({ word: str, start: num, end: num }) },
      segments: {
        type: 'array',
        items: obj({ id: { type: 'integer' }, start: num, end: num, text: str, avg_logprob: num, no_speech_prob: num }),
      },
    },
    ['text'],
  ),
};

const transcribe = (what: string): OperationDoc => ({
  body: { 'multipart/form-data': ref('OpenAiTranscriptionRequest') },
  responses: {
    '200': {
      description: what,
      content: {
        'application/json': { oneOf: [ref('OpenAiTranscription'), ref('OpenAiVerboseTranscription')] },
        'text/plain': str,
        'text/event-stream': {
          ...str,
          description: '`stream=true`: a transcript.text.delta event per segment as it is transcribed, then transcript.text.done',
        },
      },
    },
  },
});

/** OpenAI's audio API. */
export const openAiApi: GroupApi = {
  tag: 'openai',
  error: {
    name: 'OpenAiError',
    schema: obj(
      {
        error: obj({ message: str, type: str, param: { type: ['string', 'null'] }, code: { type: ['string', 'null'] } }, ['message', 'type', 'param', 'code']),
      },
      ['error'],
    ),
  },
  schemas,
  operations: {
    'openai.audio.transcriptions': transcribe('the transcript in `response_format`'),
    'openai.audio.translations': transcribe('the English translation in `response_format`'),
  },
};
