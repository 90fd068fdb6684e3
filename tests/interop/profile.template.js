'use strict';
// The gateway's connection to the test database (SOAJS_PROFILE), written for one test run by
// tests/interop/realgateway.py, which fills in the database port chosen at run time.
module.exports = {
  name: 'core_provision',
  prefix: '',
  servers: [{ host: '127.0.0.1', port: ${db_port} }],
  credentials: null,
  streaming: {},
  extraParam: {},
  URLParam: { directConnection: true, serverSelectionTimeoutMS: 5000 },
};
