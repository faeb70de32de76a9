/** The service's metric names, one vocabulary for CloudWatch, logs, tests and the health endpoint. */
export const MetricName = {
  /** Count: a source converted and every output published. */
  FilesConverted: 'FilesConverted',
  /** Count: a conversion attempt failed (transient or permanent). */
  FilesFailed: 'FilesFailed',
  /** Count: a message sent to the dead-letter queue with its reason. */
  FilesDeadLettered: 'FilesDeadLettered',
  /** Count: a notification for a key that is not a CSV input (or a test event). */
  FilesSkipped: 'FilesSkipped',
  /** Count: the source object no longer existed. */
  FilesGone: 'FilesGone',
  /** Count: a notification of a version that a newer one replaced before it converted; left to the newer one's notification. */
  FilesSuperseded: 'FilesSuperseded',
  /** Count: a redelivered or repeated notification whose outputs already exist. */
  DuplicatesSkipped: 'DuplicatesSkipped',
  /** Count: rows written per converted file. */
  RowsConverted: 'RowsConverted',
  /** Bytes: source bytes read. */
  BytesIn: 'BytesIn',
  /** Bytes: output bytes written, all formats. */
  BytesOut: 'BytesOut',
  /** Milliseconds: conversion of one file, download to last upload. */
  ConversionMs: 'ConversionMs',
  /** Milliseconds: object creation (event time) to outputs published. */
  EndToEndLatencyMs: 'EndToEndLatencyMs',
  /** Count (gauge): files in progress in this task. */
  InFlight: 'InFlight',
  /** Count: transient failures that will be retried. */
  TransientRetries: 'TransientRetries',
  /** Count: changes to a dataset's registered schema (registered, column added, type widened or pinned). */
  SchemaChanges: 'SchemaChanges',
  /** Count: SQS messages received. */
  MessagesReceived: 'MessagesReceived',
  /** Count, local only (in `snapshot()`, never sent): PutMetricData calls that failed. */
  MetricsFlushFailures: 'MetricsFlushFailures',
} as const;

export type MetricName = (typeof MetricName)[keyof typeof MetricName];
