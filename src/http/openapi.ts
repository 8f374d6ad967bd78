// GET /openapi.json: an OpenAPI 3.0 document built from the routes fastify
// registered, with the very schemas that validate requests, so the
// document cannot describe a parameter the code no longer has.
//
// The schemas are JSON Schema as typebox writes it; OpenAPI 3.0 takes a
// dialect of its own, so a few forms are rewritten on the way:
//   anyOf [X, {type: null}]     ->  X with nullable: true
//   anyOf of string consts      ->  enum
//   const                       ->  enum with one value
//   patternProperties {^.*$: X} ->  additionalProperties: X
//   examples [X, ...]           ->  example: X
// Schemas listed in NAMED_SCHEMAS become components and are referenced.

import { STATUS_CODES } from 'node:http';

import type { RouteOptions } from 'fastify';
import type { TSchema } from 'typebox';

import type { DocumentedSchema } from './route-schema.js';
import { NAMED_SCHEMAS } from './schemas.js';

export const API_VERSION = '0.1';

type JsonSchema = Record<string, unknown>;
type Operation = Record<string, unknown>;

export function buildOpenApi(routes: readonly RouteOptions[]): JsonSchema {
  const names = new Map<object, string>(
    NAMED_SCHEMAS.map(([name, schema]) => [schema, name]),
  );
  const paths: Record<string, Record<string, Operation>> = {};

  for (const route of routes) {
    const schema = route.schema as DocumentedSchema | undefined;
    if (schema === undefined) continue;

    const methods = Array.isArray(route.method) ? route.method : [route.method];
    for (const method of methods) {
      // Fastify adds a HEAD for every GET; it says nothing new.
      if (method === 'HEAD') continue;
      const path = route.url.replace(/:(\w+)/g, '{$1}');
      paths[path] ??= {};
      paths[path][method.toLowerCase()] = operation(schema, names);
    }
  }

  const schemas: Record<string, JsonSchema> = {};
  for (const [name, schema] of NAMED_SCHEMAS) {
    schemas[name] = convert(schema, names, true);
  }

  return {
    openapi: '3.0.3',
    info: {
      title: 'Usher HTTP API',
      version: API_VERSION,
      description:
        'A durable message broker. Errors answer {"error": {"code", ' +
        '"message", "field"}}; codes are listed in docs/errors.md.',
    },
    paths,
    components: { schemas },
  };
}

function operation(
  schema: DocumentedSchema,
  names: Map<object, string>,
): Operation {
  const op: Operation = { operationId: schema.operationId };
  op.summary = schema.summary;
  if (schema.description !== undefined) op.description = schema.description;
  if (schema.tags !== undefined) op.tags = schema.tags;

  const parameters = [
    ...parametersOf(schema.params, 'path', names),
    ...parametersOf(schema.querystring, 'query', names),
  ];
  if (parameters.length > 0) op.parameters = parameters;

  if (schema.body !== undefined) {
    op.requestBody = {
      required: true,
      content: { 'application/json': { schema: convert(schema.body, names) } },
    };
  }

  op.responses = responsesOf(schema, names);
  return op;
}

function parametersOf(
  source: TSchema | undefined,
  location: 'path' | 'query',
  names: Map<object, string>,
): JsonSchema[] {
  if (source === undefined) return [];
  const schema = source as JsonSchema;
  const properties = (schema.properties ?? {}) as Record<string, JsonSchema>;
  const required = new Set((schema.required ?? []) as string[]);

  return Object.entries(properties).map(([name, property]) => {
    const parameter: JsonSchema = {
      name,
      in: location,
      required: location === 'path' || required.has(name),
      schema: convert(property, names),
    };
    if (property.description !== undefined) {
      parameter.description = property.description;
    }
    return parameter;
  });
}

function responsesOf(
  schema: DocumentedSchema,
  names: Map<object, string>,
): JsonSchema {
  const responses: JsonSchema = {};

  if (schema.produces !== undefined) {
    responses['200'] = {
      description: 'OK',
      content: { [schema.produces]: { schema: { type: 'string' } } },
    };
    return responses;
  }

  const statuses = Object.keys(schema.response ?? {});
  // A route that declares no success answer has none: 204 No Content.
  if (!statuses.some((status) => status.startsWith('2'))) {
    responses['204'] = { description: 'No Content' };
  }
  for (const status of statuses) {
    const answer = (schema.response ?? {})[status];
    responses[status.toUpperCase()] = {
      description: describeStatus(status),
      content: { 'application/json': { schema: convert(answer, names) } },
    };
  }
  return responses;
}

function describeStatus(status: string): string {
  if (status === '4xx') return 'Refused; see the error code';
  if (status === '5xx') return 'Broker error; see the error code';
  return STATUS_CODES[Number(status)] ?? status;
}

/** Rewrites one JSON schema into OpenAPI 3.0's dialect (top of file). */
function convert(
  source: TSchema | JsonSchema,
  names: Map<object, string>,
  isComponent = false,
): JsonSchema {
  // A TSchema is a JSON schema object; typebox only hides its own keys.
  const schema = source as JsonSchema;
  const name = names.get(schema);
  if (name !== undefined && !isComponent) {
    return { $ref: `#/components/schemas/${name}` };
  }

  if (Array.isArray(schema.anyOf)) return convertAnyOf(schema, names);

  const out: JsonSchema = {};
  for (const [key, value] of Object.entries(schema)) {
    switch (key) {
      case 'const':
        out.enum = [value];
        break;
      case 'properties':
        out.properties = mapValues(value as Record<string, JsonSchema>, names);
        break;
      case 'patternProperties': {
        const [only] = Object.values(value as Record<string, JsonSchema>);
        out.additionalProperties = convert(only, names);
        break;
      }
      case 'items':
        out.items = convert(value as JsonSchema, names);
        break;
      case 'examples':
        out.example = (value as unknown[])[0];
        break;
      case 'additionalProperties':
        out.additionalProperties =
          typeof value === 'boolean'
            ? value
            : convert(value as JsonSchema, names);
        break;
      default:
        out[key] = value;
    }
  }
  return out;
}

function convertAnyOf(schema: JsonSchema, names: Map<object, string>) {
  const branches = schema.anyOf as JsonSchema[];
  const nullable = branches.some((branch) => branch.type === 'null');
  const others = branches.filter((branch) => branch.type !== 'null');

  let out: JsonSchema;
  if (others.length === 1) {
    out = convert(others[0], names);
  } else if (others.every((branch) => 'const' in branch)) {
    out = { type: others[0].type, enum: others.map((branch) => branch.const) };
  } else {
    out = { anyOf: others.map((branch) => convert(branch, names)) };
  }

  if (nullable) out.nullable = true;
  if (schema.description !== undefined) out.description = schema.description;
  return out;
}

function mapValues(
  record: Record<string, JsonSchema>,
  names: Map<object, string>,
): Record<string, JsonSchema> {
  const out: Record<string, JsonSchema> = {};
  for (const [key, value] of Object.entries(record)) {
    out[key] = convert(value, names);
  }
  return out;
}
