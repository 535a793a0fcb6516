// IBM's views of a job: what GET /v1/recognitions/{id} shows while it runs.
import t from 'tap';

import { jobDetail } from '../../src/ibm/views.js';
import type { Job } from '../../src/jobs/job.js';

const job = { id: 'j', created: 0, updated: 0, status: 'processing' } as Job;

t.test('progress: whole percents for clients, although the service keeps fractions', async (t) => {
  t.match(jobDetail(job, undefined, 99.97), { status: 'processing', progress: 99 });
  t.match(jobDetail(job, undefined, 0.4), { progress: 0 });
  t.notOk('progress' in jobDetail({ ...job, status: 'waiting' }, undefined, 12.5), 'only while processing');
});
