// An independent gRPC client for the worker: Node's @grpc/grpc-js with grpc-reflection-js, and none of OrthancSeg's
// generated code or .proto files. It learns the API the way grpcurl, Postman or Evans do: lists the services through server
// reflection, fetches the descriptors of a method, encodes a request from them and calls it.
//
// Usage: node reflect-and-call.mjs ADDRESS VIEWER_TOKEN_FILE ADMIN_TOKEN_FILE OUTPUT_JSON
// Writes one JSON object (what it saw) to OUTPUT_JSON; the integration test (tests/OrthancSeg.IntegrationTests/Auth) asserts on it.
import { readFileSync, writeFileSync } from 'node:fs';
import grpc from '@grpc/grpc-js';
import reflection from 'grpc-reflection-js';
import protobuf from 'protobufjs';

const [address, viewerTokenFile, adminTokenFile, outputFile] = process.argv.slice(2);
if (!address || !viewerTokenFile || !adminTokenFile || !outputFile) {
  console.error('usage: node reflect-and-call.mjs ADDRESS VIEWER_TOKEN_FILE ADMIN_TOKEN_FILE OUTPUT_JSON');
  process.exit(2);
}
const target = address.replace(/^http:\/\//, '');
const bearer = (file) => {
  const metadata = new grpc.Metadata();
  metadata.set('authorization', `Bearer ${readFileSync(file, 'utf8').trim()}`);
  return metadata;
};

// google.rpc.Status and BadRequest, as published in googleapis (google/rpc/status.proto, error_details.proto): the error
// details a server puts in the grpc-status-details-bin trailer.
const rpc = protobuf.Root.fromJSON({
  nested: {
    google: {
      nested: {
        protobuf: { nested: { Any: { fields: { type_url: { type: 'string', id: 1 }, value: { type: 'bytes', id: 2 } } } } },
        rpc: {
          nested: {
            Status: { fields: { code: { type: 'int32', id: 1 }, message: { type: 'string', id: 2 }, details: { rule: 'repeated', type: 'google.protobuf.Any', id: 3 } } },
            BadRequest: {
              fields: { field_violations: { rule: 'repeated', type: 'FieldViolation', id: 1 } },
              nested: { FieldViolation: { fields: { field: { type: 'string', id: 1 }, description: { type: 'string', id: 2 } } } },
            },
          },
        },
      },
    },
  },
});

function badRequestOf(error) {
  const [bin] = error.metadata?.get('grpc-status-details-bin') ?? [];
  if (!bin) return null;
  const status = rpc.lookupType('google.rpc.Status').decode(bin);
  const detail = status.details.find((d) => d.type_url === 'type.googleapis.com/google.rpc.BadRequest');
  if (!detail) return null;
  const badRequest = rpc.lookupType('google.rpc.BadRequest').decode(detail.value);
  return badRequest.field_violations.map((v) => ({ field: v.field, description: v.description }));
}

// Resolves a method's descriptors through reflection and calls it with a request built from a plain object.
async function call(root, service, methodName, request, metadata) {
  const serviceType = root.lookupService(service);
  const method = serviceType.methods[methodName].resolve();
  const requestType = method.resolvedRequestType;
  const responseType = method.resolvedResponseType;
  const client = new grpc.Client(target, grpc.credentials.createInsecure());
  try {
    const response = await new Promise((resolve, reject) => {
      client.makeUnaryRequest(`/${service}/${methodName}`,
        (value) => Buffer.from(requestType.encode(requestType.fromObject(value)).finish()),
        (buffer) => responseType.toObject(responseType.decode(buffer), { longs: String, enums: String, defaults: true }),
        request, metadata, { deadline: Date.now() + 15000 }, (error, value) => (error ? reject(error) : resolve(value)));
    });
    return { ok: true, response };
  } catch (error) {
    return { ok: false, code: grpc.status[error.code], message: error.details, fieldViolations: badRequestOf(error) };
  } finally {
    client.close();
  }
}

const reflectionClient = new reflection.Client(target, grpc.credentials.createInsecure());
const services = await reflectionClient.listServices();
const caseRoot = await reflectionClient.fileContainingSymbol('orthancseg.v1.CaseService');
const workflowRoot = await reflectionClient.fileContainingSymbol('orthancseg.v1.WorkflowService');
const listCases = caseRoot.lookupService('orthancseg.v1.CaseService').methods.ListCases.resolve();
const result = {
  services,
  method: {
    name: listCases.name,
    requestType: listCases.resolvedRequestType.fullName,
    requestFields: Object.keys(listCases.resolvedRequestType.fields),
    responseType: listCases.resolvedResponseType.fullName,
  },
  viewerListCases: await call(caseRoot, 'orthancseg.v1.CaseService', 'ListCases', { page_size: 10 }, bearer(viewerTokenFile)),
  anonymousListCases: await call(caseRoot, 'orthancseg.v1.CaseService', 'ListCases', {}, new grpc.Metadata()),
  viewerCreateWorkflow: await call(workflowRoot, 'orthancseg.v1.WorkflowService', 'CreateWorkflow', { workflow: { name: 'from-node' } }, bearer(viewerTokenFile)),
  adminInvalidWorkflow: await call(workflowRoot, 'orthancseg.v1.WorkflowService', 'CreateWorkflow', { workflow: { name: 'Not A Name!' } }, bearer(adminTokenFile)),
};
writeFileSync(outputFile, JSON.stringify(result, null, 2));
process.exit(0);
