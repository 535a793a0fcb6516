// IBM's official Node SDK (ibm-watson), pointed at a test service: what IBM's customers run.
import { BasicAuthenticator } from 'ibm-watson/auth/index.js';
import SpeechToTextV1 from 'ibm-watson/speech-to-text/v1.js';

import { apiKey } from './app.js';
import { until } from './poll.js';

/** A SpeechToTextV1 client of the service at `base`, with the API key as IBM's SDKs send it. */
export function ibmClient(base: string): SpeechToTextV1 {
  return new SpeechToTextV1({ authenticator: new BasicAuthenticator({ username: 'apikey', password: apiKey }), serviceUrl: base });
}

/** A job as the SDK's checkJob returns it. */
export type SdkJob = Awaited<ReturnType<SpeechToTextV1['checkJob']>>['result'];

/** Polls checkJob until the job is completed or failed; resolves with it. */
export async function waitForSdkJob(stt: SpeechToTextV1, id: string, timeoutMs = 60_000): Promise<SdkJob> {
  let job: SdkJob | undefined;
  await until(
    async () => {
      job = (await stt.checkJob({ id })).result;
      return job.status === 'completed' || job.status === 'failed';
    },
    timeoutMs,
    `job ${id} to finish (still ${job?.status})`,
  );
  return job!;
}
