// Transcribes one audio file on earshot with IBM's official Node SDK (npm i ibm-watson),
// unchanged: only the service URL and the authenticator differ from IBM Cloud.
//
//   EARSHOT_URL=http://earshot.local:8080 EARSHOT_API_KEY=<key> node examples/ibm-watson-sdk.mjs speech.wav [--bearer]
//
// EARSHOT_URL may also be a service URL in IBM Cloud's form, ending in /instances/<guid>.
// IAM (IamAuthenticator) needs IBM's token service on the internet; on the LAN the key is
// sent as HTTP Basic (username "apikey"), or with --bearer as a bearer token.
import { readFileSync } from 'node:fs';

import { BasicAuthenticator, BearerTokenAuthenticator } from 'ibm-watson/auth/index.js';
import SpeechToTextV1 from 'ibm-watson/speech-to-text/v1.js';

const [file, flag] = process.argv.slice(2);
const { EARSHOT_URL: serviceUrl, EARSHOT_API_KEY: key } = process.env;
if (!file || !serviceUrl || !key) {
  console.error('usage: EARSHOT_URL=http://host:8080 EARSHOT_API_KEY=<key> node examples/ibm-watson-sdk.mjs <audio file> [--bearer]');
  process.exit(2);
}

const authenticator = flag === '--bearer' ? new BearerTokenAuthenticator({ bearerToken: key }) : new BasicAuthenticator({ username: 'apikey', password: key });
const stt = new SpeechToTextV1({ authenticator, serviceUrl });

// An asynchronous job: submit (the service detects the format), then poll until it leaves
// waiting/processing.
const { result: job } = await stt.createJob({ audio: readFileSync(file), contentType: 'application/octet-stream', timestamps: true });
for (;;) {
  const { result } = await stt.checkJob({ id: job.id });
  if (result.status !== 'waiting' && result.status !== 'processing') {
    console.log(JSON.stringify({ id: result.id, status: result.status, results: result.results, warnings: result.warnings }, null, 2));
    process.exit(result.status === 'completed' ? 0 : 1);
  }
  await new Promise((resolve) => setTimeout(resolve, 1000));
}
