// The layers of src/ (README, "Architecture"), checked by `npm test` before any test runs:
//   shared  <-  adapters, pgtools  <-  domain  <-  delivery  <-  wiring  <-  main, sandbox
// Each rule names the imports it forbids; everything not forbidden is allowed.
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-cycles',
      severity: 'error',
      comment: 'A cycle makes two modules one: neither can be read, tested or moved alone.',
      from: { path: '^src/' },
      to: { circular: true },
    },
    {
      name: 'shared-is-basic',
      severity: 'error',
      comment: 'Shared basics (config, errors, log, metrics, text, db) know nothing of the layers above them.',
      from: { path: '^src/shared/' },
      to: { path: '^src/', pathNot: '^src/shared/' },
    },
    {
      name: 'adapters-know-no-domain',
      severity: 'error',
      comment: 'An adapter (port, real client, in-memory double, HTTP stand-in) speaks its outside system only.',
      from: { path: '^src/adapters/' },
      to: { path: '^src/(domain|delivery|wiring|sandbox|pgtools)/' },
    },
    {
      name: 'adapters-stand-alone',
      severity: 'error',
      comment: 'One folder per outside system; one adapter does not reach into another.',
      from: { path: '^src/adapters/([^/]+)/' },
      to: { path: '^src/adapters/', pathNot: '^src/adapters/$1/' },
    },
    {
      name: 'pgtools-know-no-domain',
      severity: 'error',
      comment: 'The PostgreSQL tools run pg_dump, psql and SQL; what a backup or a restore means is the domain.',
      from: { path: '^src/pgtools/' },
      to: { path: '^src/(domain|delivery|wiring|sandbox)/' },
    },
    {
      name: 'domain-uses-ports-only',
      severity: 'error',
      comment: 'The domain talks to outside systems through their ports; wiring chooses the real client or a double.',
      from: { path: '^src/domain/' },
      to: { path: '^src/adapters/', pathNot: '^src/adapters/[^/]+/port\\.ts$' },
    },
    {
      name: 'domain-knows-no-delivery',
      severity: 'error',
      comment: 'The domain returns data; Slack, the CLI, the API and the job queues deliver it.',
      from: { path: '^src/domain/' },
      to: { path: '^src/(delivery|wiring|sandbox)/' },
    },
    {
      name: 'backups-do-not-import-recovery',
      severity: 'error',
      comment: 'Taking a backup and restoring one share the PostgreSQL tools, not each other.',
      from: { path: '^src/domain/backups/' },
      to: { path: '^src/domain/recovery/' },
    },
    {
      name: 'domain-folders-one-way',
      severity: 'error',
      comment:
        'Domain folders depend one way: recovery -> backups -> (access, audit); incidents -> (access, audit). ' +
        'The audit trail and access rules are leaves.',
      from: { path: '^src/domain/(audit|access|incidents|backups)/' },
      to: { path: '^src/domain/(recovery|backups|incidents)/', pathNot: '^src/domain/$1/' },
    },
    {
      name: 'audit-is-a-leaf',
      severity: 'error',
      comment: 'Everything writes to the audit trail; the audit trail knows nothing of what writes to it.',
      from: { path: '^src/domain/audit/' },
      to: { path: '^src/domain/', pathNot: '^src/domain/audit/' },
    },
    {
      name: 'slack-renders-not-routes',
      severity: 'error',
      comment: 'Commands use the Slack renderers; the renderers never reach back into the commands.',
      from: { path: '^src/delivery/slack/' },
      to: { path: '^src/delivery/commands/' },
    },
    {
      name: 'delivery-is-wired-not-wiring',
      severity: 'error',
      comment: 'Only the wiring builds and starts things; delivery receives what it needs.',
      from: { path: '^src/(delivery|domain|adapters|pgtools|shared)/' },
      to: { path: '^src/(wiring|sandbox)/' },
    },
    {
      name: 'no-doubles-in-production-code',
      severity: 'error',
      comment: 'In-memory doubles and HTTP stand-ins are for tests, the sandbox and the benchmarks.',
      from: { path: '^src/', pathNot: '^src/(sandbox|adapters)/' },
      to: { path: '^src/adapters/[^/]+/(memory|stand-in)\\.ts$' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsConfig: { fileName: 'tsconfig.build.json' },
    tsPreCompilationDeps: true,
    enhancedResolveOptions: { extensions: ['.ts', '.js'] },
  },
};
