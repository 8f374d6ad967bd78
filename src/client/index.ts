// Usher's TypeScript client: the package's public entry. Everything a user
// imports comes from here; the modules behind it are internal.
//
//   import { connect } from 'usher';
//   const usher = connect('http://127.0.0.1:8080');
//   await usher.publish('emails', { to: 'ada@example.org' });
//   usher.consume('emails', async (message) => send(message.body));

export { connect, UsherClient, type ClientOptions } from './client.js';
export { MessagesShedError, type RetryPolicy } from './backoff.js';
export {
  connectAdmin,
  UsherAdmin,
  type Permissions,
  type TokenInfo,
  type UserInfo,
  type Whoami,
} from './admin.js';
export {
  Consumer,
  ConsumerMessage,
  type ConsumeOptions,
  type Handler,
} from './consumer.js';
export { CLIENT_ERROR_CODES, UsherClientError } from './errors.js';
export { connectAmqp, UsherAmqpClient, type AmqpHandler } from './amqp.js';
export type { AmqpDelivery } from './amqp-terms.js';
export type {
  AckResult,
  BackoffSettings,
  CreateQueueResult,
  Health,
  JsonValue,
  MessageBody,
  NackOptions,
  NackResult,
  OutgoingMessage,
  PeekOptions,
  PeekedMessage,
  PublishOptions,
  PublishResult,
  QueueInfo,
  QueueSettings,
  QueueSettingsInput,
  QueueStats,
  ReceiveOptions,
  ReceivedBody,
  ReceivedMessage,
  RedriveOptions,
} from './types.js';
