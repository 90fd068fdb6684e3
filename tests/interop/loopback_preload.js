'use strict';
// Loaded with `node -r` before the gateway: every server that is given only a port (or an
// options object with a port and no host) listens on 127.0.0.1 instead of every interface.
// The installed soajs.controller package itself is not modified.
const net = require('net');

const LOOPBACK = '127.0.0.1';
const originalListen = net.Server.prototype.listen;

net.Server.prototype.listen = function listenOnLoopback(...args) {
  const first = args[0];
  const isPort = typeof first === 'number' || (typeof first === 'string' && /^\d+$/.test(first));
  if (isPort) {
    if (typeof args[1] !== 'string') {
      args.splice(1, 0, LOOPBACK);
    }
  } else if (first === undefined || first === null || typeof first === 'function') {
    args.splice(0, first === undefined || first === null ? 1 : 0, { port: 0, host: LOOPBACK });
  } else if (typeof first === 'object' && first.path === undefined && first.host === undefined) {
    args[0] = Object.assign({}, first, { host: LOOPBACK });
  }
  return originalListen.apply(this, args);
};
