// Drives a tmirror server through Huawei's official Node.js SDK (@huaweicloud/huaweicloud-sdk-vpc,
// pinned in package-lock.json) the way a user's program does, and writes what the SDK showed as
// JSON for tests/conformance/huawei/test_node_sdk.py to check. It asserts nothing itself: it
// records, so that a failure shows every value at once.
//
// The Node.js SDK builds its exceptions in huaweicloud-sdk-core's ExceptionUtil: errorCode from
// the body's `error.code` or `error_code`, errorMsg from `error.message` or `error_msg` (else the
// HTTP client's own "Request failed with status code N"), requestId from the X-Request-Id header.
// A v1 error body of only {"code","message"} leaves errorCode undefined.
//
// Environment: CHECK_ENDPOINT, CHECK_AK, CHECK_SK, CHECK_PROJECT_ID (the server and a credential
// of it), CHECK_RESULT (file the JSON result is written to; the SDK logs to stdout itself),
// CHECK_CA_FILE (https endpoints: the PEM CA the clients verify the server's certificate against).
//
// Over https the CA goes in through the SDK's own options: withOptions({axiosRequestConfig})
// is handed to axios, whose httpsAgent is a Node https.Agent with `ca` (and Node's default
// rejectUnauthorized: true). The core's ClientBuilder sets `disableSslVerification: true` in
// its options, but nothing reads it (huaweicloud-sdk-core 3.1.x): verification stays on, and
// the script records a call of a client without the CA (`untrusted`) to show it.
//   node sdk-errors.js   (after scripts/node-deps.sh)
'use strict';

const crypto = require('crypto');
const fs = require('fs');
const https = require('https');
const { BasicCredentials } = require('@huaweicloud/huaweicloud-sdk-core');
const { v2, v3 } = require('@huaweicloud/huaweicloud-sdk-vpc');

function env(name) {
    const v = process.env[name];
    if (!v) {
        throw new Error(`environment variable ${name} is not set`);
    }
    return v;
}

const endpoint = env('CHECK_ENDPOINT');
const ak = env('CHECK_AK');
const sk = env('CHECK_SK');
const projectId = env('CHECK_PROJECT_ID');
const resultPath = env('CHECK_RESULT');
const tls = endpoint.startsWith('https://');
const caFile = tls ? env('CHECK_CA_FILE') : null;

// As in Huawei's examples: BasicCredentials with AK, SK and project id, an explicit endpoint.
// `ca`: the PEM the clients trust over https (null: Node's default trust store).
function clients(secret, ca = tls ? fs.readFileSync(caFile) : null) {
    const credentials = new BasicCredentials().withAk(ak).withSk(secret).withProjectId(projectId);
    // Each request bounded, so that a server that does not answer fails the check, not hangs it.
    const axiosRequestConfig = { timeout: 20000 };
    if (ca !== null) {
        axiosRequestConfig.httpsAgent = new https.Agent({ ca });
    }
    const options = { axiosRequestConfig };
    const build = (Client) => Client.newBuilder()
        .withCredential(credentials)
        .withEndpoint(endpoint)
        .withOptions(options)
        .build();
    return { v2: build(v2.VpcClient), v3: build(v3.VpcClient) };
}

// undefined does not survive JSON.stringify; the check must see that a field was undefined.
const plain = (v) => (v === undefined ? null : v);

// Runs an SDK call that should fail and records the exception as a user would see it.
async function failure(call) {
    try {
        const resp = await call();
        return { thrown: false, httpStatusCode: plain(resp && resp.httpStatusCode), response: resp };
    } catch (e) {
        return {
            thrown: true,
            name: plain(e && e.name),
            isClientRequestException: e instanceof Error && e.name === 'ClientRequestException',
            httpStatusCode: plain(e.httpStatusCode),
            errorCode: plain(e.errorCode),
            errorMsg: plain(e.errorMsg),
            // What `${e.errorMsg}` prints in a user's log line: "undefined" was the bug.
            errorMsgText: `${e.errorMsg}`,
            requestId: plain(e.requestId),
            message: plain(e.message),
        };
    }
}

function version(pkg) {
    return require(`${pkg}/package.json`).version;
}

async function main(result) {
    result.sdk = {
        core: version('@huaweicloud/huaweicloud-sdk-core'),
        vpc: version('@huaweicloud/huaweicloud-sdk-vpc'),
        node: process.version,
    };
    result.tls = tls;
    const good = clients(sk);
    const badSecret = sk.slice(0, -1) + (sk.endsWith('A') ? 'B' : 'A');
    const bad = clients(badSecret);

    // v1 ports through the v2 client: create, show.
    const name = `node-sdk-${crypto.randomBytes(5).toString('hex')}`;
    const networkId = crypto.randomUUID();
    const subnetId = crypto.randomUUID();
    const ip = `198.19.${crypto.randomInt(0, 250)}.${crypto.randomInt(1, 250)}`;
    const option = new v2.CreatePortOption(networkId)
        .withName(name)
        .withFixedIps([new v2.FixedIp().withSubnetId(subnetId).withIpAddress(ip)]);
    const created = await good.v2.createPort(
        new v2.CreatePortRequest().withBody(new v2.CreatePortRequestBody(option)));
    result.created = {
        httpStatusCode: created.httpStatusCode, port: created.port,
        sent: { name, network_id: networkId, subnet_id: subnetId, ip_address: ip },
    };
    const portId = created.port && created.port.id;
    if (!portId) {
        throw new Error(`createPort answered without a port id: ${JSON.stringify(created)}`);
    }
    result.portId = portId;

    const shown = await good.v2.showPort(new v2.ShowPortRequest(portId));
    result.shown = { httpStatusCode: shown.httpStatusCode, port: shown.port };

    // v1 error: a port that does not exist.
    const missingPort = crypto.randomUUID();
    result.missingPortId = missingPort;
    result.errors.missingPort = await failure(() => good.v2.showPort(new v2.ShowPortRequest(missingPort)));

    // v3 error through the v3 (traffic mirroring) client: a filter that does not exist.
    const missingFilter = crypto.randomUUID();
    result.missingFilterId = missingFilter;
    result.errors.missingFilter = await failure(
        () => good.v3.showTrafficMirrorFilter(new v3.ShowTrafficMirrorFilterRequest(missingFilter)));

    // A wrong secret key, on both clients.
    result.errors.wrongSecretV2 = await failure(() => bad.v2.showPort(new v2.ShowPortRequest(portId)));
    result.errors.wrongSecretV3 = await failure(
        () => bad.v3.listTrafficMirrorFilters(new v3.ListTrafficMirrorFiltersRequest()));

    // Over https, a client that does not trust the server's certificate gets no answer.
    if (tls) {
        try {
            await clients(sk, null).v2.showPort(new v2.ShowPortRequest(portId));
            result.untrusted = { thrown: false };
        } catch (e) {
            result.untrusted = {
                thrown: true, name: plain(e && e.name), message: plain(e && (e.errorMsg || e.message)),
                httpStatusCode: plain(e && e.httpStatusCode),
            };
        }
    }

    // Delete, then the port is gone for the SDK too.
    const deleted = await good.v2.deletePort(new v2.DeletePortRequest(portId));
    result.deleted = { httpStatusCode: deleted.httpStatusCode };
    result.errors.deletedPort = await failure(() => good.v2.showPort(new v2.ShowPortRequest(portId)));
}

async function cleanup(result) {
    // Only if main() stopped between create and delete.
    if (!result.portId || result.deleted) {
        return;
    }
    try {
        await clients(sk).v2.deletePort(new v2.DeletePortRequest(result.portId));
        result.cleanedUp = true;
    } catch (e) {
        result.cleanupError = `${e.name}: ${e.httpStatusCode} ${e.errorCode} ${e.errorMsg || e.message}`;
    }
}

(async () => {
    const result = { errors: {} };
    let status = 0;
    try {
        await main(result);
    } catch (e) {
        result.crash = {
            name: plain(e && e.name), message: plain(e && (e.errorMsg || e.message)),
            httpStatusCode: plain(e && e.httpStatusCode), errorCode: plain(e && e.errorCode),
            stack: plain(e && e.stack),
        };
        status = 1;
    } finally {
        await cleanup(result);
        fs.writeFileSync(resultPath, JSON.stringify(result, null, 2) + '\n');
    }
    process.exitCode = status;
})();
