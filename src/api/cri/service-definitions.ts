import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { MethodDefinition, ServiceDefinition } from '@grpc/grpc-js';
import type { Options } from '@grpc/proto-loader';
// @grpc/proto-loader's own protobufjs (the lock file pins its version): the same coders it would make.
import protobuf from 'protobufjs/light.js';

/**
 * grpc-js service definitions of api.proto's services, built straight from
 * protobufjs types: each method's path, streaming flags and (de)serializers,
 * as @grpc/proto-loader builds them (fromObject + encode, decode + toObject
 * with the same options). proto-loader also converts every message of the
 * file into a descriptor, for reflection berth does not serve: on a CRI
 * door's first connection that was twice the cost of everything else here.
 *
 * The build writes api.proto as protobufjs JSON beside the built module
 * (`api.json` in dist/api/cri, scripts/build.mjs), which loads without the
 * .proto parser; run from src/, the .proto itself is parsed.
 *
 *   const defs = criServiceDefinitions(PROTO_LOADER_OPTIONS);
 *   server.addService(defs['runtime.v1.RuntimeService'], impl);
 */
export type CriServiceDefinitions = Record<string, ServiceDefinition>;

/** The file the build writes: api.proto as protobufjs JSON (field names as written, as keepCase parses them). */
export const CRI_PROTO_JSON = 'api.json';

export function criServiceDefinitions(protoPath: string, options: Options, json = path.join(import.meta.dirname, CRI_PROTO_JSON)): CriServiceDefinitions {
  const root = existsSync(json) ? protobuf.Root.fromJSON(JSON.parse(readFileSync(json, 'utf8')) as protobuf.INamespace) : parseProto(protoPath);
  root.resolveAll();
  const defs: CriServiceDefinitions = {};
  for (const service of allServices(root)) {
    const name = service.fullName.replace(/^\./, '');
    const def: Record<string, MethodDefinition<unknown, unknown>> = {};
    for (const m of service.methodsArray) {
      const req = m.resolvedRequestType!;
      const res = m.resolvedResponseType!;
      def[m.name] = {
        path: `/${name}/${m.name}`,
        requestStream: !!m.requestStream,
        responseStream: !!m.responseStream,
        requestSerialize: serializer(req),
        requestDeserialize: deserializer(req, options),
        responseSerialize: serializer(res),
        responseDeserialize: deserializer(res, options),
        originalName: m.name.charAt(0).toLowerCase() + m.name.slice(1),
      };
    }
    defs[name] = def;
  }
  return defs;
}

/** The .proto parsed by the full protobufjs, which has the parser the light build leaves out. */
function parseProto(protoPath: string): protobuf.Root {
  const full = createRequire(import.meta.url)('protobufjs') as typeof protobuf;
  return new full.Root().loadSync(protoPath, { keepCase: true });
}

function allServices(ns: protobuf.NamespaceBase): protobuf.Service[] {
  // By shape, not instanceof: a parsed root's classes are the full build's, not the light build's.
  return ns.nestedArray.flatMap((o) => ('methodsArray' in o ? [o as protobuf.Service] : 'nestedArray' in o ? allServices(o as protobuf.NamespaceBase) : []));
}

function serializer(type: protobuf.Type): (value: unknown) => Buffer {
  return (value) => {
    if (Array.isArray(value)) throw new Error(`Failed to serialize message: expected object with ${type.name} structure, got array instead`);
    // protobufjs's writer makes a Buffer when Buffer exists, as it does in Node.
    return type.encode(type.fromObject(value as Record<string, unknown>)).finish() as Buffer;
  };
}

function deserializer(type: protobuf.Type, options: Options): (buf: Buffer) => unknown {
  return (buf) => type.toObject(type.decode(buf), options);
}
