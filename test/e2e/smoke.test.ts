import { afterAll, beforeAll, expect, test } from 'vitest';
import { createTestDatabase, dropQueuePrefix, uniqueQueuePrefix, type TestDatabase } from '../support/db.js';
import { FakePagerDuty } from '../support/fake-pagerduty.js';
import { FakeSlack } from '../support/fake-slack.js';
import { LifelineProcess, SIGNING_SECRET, USERS, writeTestConfig } from '../support/lifeline-process.js';
import { commandBody, postSigned } from '../support/slack-requests.js';
import { waitUntil } from '../support/wait.js';

let db: TestDatabase;
let slack: FakeSlack;
let pd: FakePagerDuty;
let lifeline: LifelineProcess;
const prefix = uniqueQueuePrefix();

beforeAll(async () => {
  db = await createTestDatabase();
  slack = await new FakeSlack().start();
  pd = await new FakePagerDuty().start();
  lifeline = await new LifelineProcess({ databaseUrl: db.url, queuePrefix: prefix, slackApiUrl: slack.apiUrl, pagerdutyUrl: pd.url, configPath: writeTestConfig() }).start();
});

afterAll(async () => {
  await lifeline?.stop();
  await slack?.stop();
  await pd?.stop();
  await db?.drop();
  await dropQueuePrefix(prefix);
});

test('smoke: declare pages oncall and posts the card', async () => {
  const res = await postSigned(lifeline.eventsUrl, commandBody({ command: '/incident', text: 'sev1 Database unreachable', user_id: USERS.declarer, channel_id: 'C0EMERGENCY', response_url: slack.newResponseUrl() }), { secret: SIGNING_SECRET });
  expect(res.status).toBe(200);
  await waitUntil('card', () => slack.posts('C0EMERGENCY').length > 0);
  await waitUntil('4 triggers', () => pd.triggers().length === 4, 20_000);
  console.log(JSON.stringify(slack.calls.map(c => [c.method, c.body.text]), null, 1));
  console.log(slack.responses.map(r => r.body.text));
});
