'use strict';
// Runs soajs core's service middleware (npm soajs, mw/service/index.js) on header values read
// as JSON lines from stdin, and writes one JSON line per case with what a handler reads.
// Usage: node harness.js <path to the soajs package folder>
const path = require('path');
const readline = require('readline');

const soajsDir = process.argv[2];
// The middleware logs through console; stdout carries only this harness's answers.
console.log = console.error;
console.info = console.error;
console.warn = console.error;
const serviceMiddleware = require(path.join(soajsDir, 'mw', 'service', 'index.js'));

const SERVICE = 'svc';
function buildMiddleware(uracDriver) {
	return serviceMiddleware({
		soajs: { param: { serviceName: SERVICE } },
		// interConnect: the service's own config lists interConnect targets (Node's precondition).
		param: { interConnect: true, session: false, uracDriver: uracDriver },
		app: { soajs: { param: { serviceName: SERVICE } } },
		core: {},
	});
}
const middleware = buildMiddleware(false);
// With the service's uracDriver option, uracCheck reads req.soajs.param.urac_Profile: a header
// with urac but no param throws there, so only the cases that ask for it run this one.
const uracMiddleware = buildMiddleware(true);

function uracDriverView(driver) {
	if (!driver) {
		return null;
	}
	return {
		profile: driver.getProfile(),
		profileAll: driver.getProfile(true),
		acl: driver.getAcl(),
		groups: driver.getGroups(),
	};
}

function handlerView(soajs) {
	if (!soajs.tenant) {
		return null;
	}
	const tenant = Object.assign({}, soajs.tenant);
	delete tenant.key;
	delete tenant.application;
	return {
		tenant: tenant,
		key: soajs.tenant.key,
		application: soajs.tenant.application,
		servicesConfig: soajs.servicesConfig,
		urac: soajs.urac,
		device: soajs.device,
		geo: soajs.geo,
		param: soajs.param,
	};
}

function runCalls(soajs, calls) {
	const results = [];
	for (const call of calls) {
		if (!soajs.awareness) {
			results.push({ none: true });
			continue;
		}
		let answer = null;
		const done = (response) => { answer = response; };
		if (call.length === 0) {
			soajs.awareness.connect(done);
		} else if (call.length === 1) {
			soajs.awareness.connect(call[0], done);
		} else {
			soajs.awareness.connect(call[0], call[1], done);
		}
		results.push(answer === null ? { pending: true } : answer);
	}
	return results;
}

const lines = readline.createInterface({ input: process.stdin });
lines.on('line', (line) => {
	const request = JSON.parse(line);
	const req = {
		// Lowercase names, as Node's HTTP parser gives them.
		headers: Object.assign({}, request.headers || {}, { soajsinjectobj: request.header }),
		query: request.query || {},
		soajs: {
			registry: {
				services: {
					controller: { name: 'controller' },
					[SERVICE]: { extKeyRequired: false },
				},
			},
			// uracCheck logs through the request's logger when the driver stays empty.
			log: { error: () => {} },
		},
	};
	let nextArgument = 'not called';
	let answer;
	try {
		const chosen = request.uracDriver ? uracMiddleware : middleware;
		chosen(req, {}, (error) => { nextArgument = error === undefined ? null : error; });
		answer = {
			id: request.id,
			next: nextArgument,
			context: handlerView(req.soajs),
			connect: runCalls(req.soajs, request.calls || []),
			uracDriver: uracDriverView(req.soajs.uracDriver),
		};
	} catch (error) {
		answer = { id: request.id, thrown: String(error && error.message) };
	}
	process.stdout.write(JSON.stringify(answer) + '\n');
});
