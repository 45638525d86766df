import type { FastifySchemaCompiler, FastifySchemaValidationError } from 'fastify';
import type { TSchema } from 'typebox';
import { Value } from 'typebox/value';
import { compileBounded } from '@inferq/contracts';

/**
 * `TypeBoxValidatorCompiler` with errors in linear time (`compileBounded`): bodies are never
 * converted, query strings, params and headers are (`"5"` → 5).
 */
export const boundedValidatorCompiler: FastifySchemaCompiler<TSchema> = ({ schema, httpPart }) => {
  const validator = compileBounded(schema);
  return (value): { value: unknown } | { error: FastifySchemaValidationError[] } => {
    const converted = httpPart === 'body' ? value : Value.Convert(schema, value);
    if (validator.Check(converted)) return { value: converted };
    return { error: validator.Errors(converted) as unknown as FastifySchemaValidationError[] };
  };
};
