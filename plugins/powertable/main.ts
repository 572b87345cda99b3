import { definePlugin } from 'plugin-host/sdk';

const NAME = 'powertable';
const VERSION = '0.1.0';

/** PowerTable: the example plugin. Serves `GET /hello`. */
export const newPlugin = definePlugin(() => {
  const tables = ['hello'];
  return {
    getMetadata: () => ({
      name: NAME,
      version: VERSION,
      description: 'PowerTable example plugin',
      author: 'plugin-host',
      endpoints: [{ method: 'GET', path: '/hello', handler: 'hello' }],
    }),
    initialize(ctx) {
      ctx.log.info({ tables }, 'powertable initialized');
    },
    registerRoutes(server) {
      server.get(
        '/hello',
        {
          schema: {
            response: {
              200: {
                type: 'object',
                properties: {
                  message: { type: 'string' },
                  plugin: { type: 'string' },
                  version: { type: 'string' },
                  tables: { type: 'array', items: { type: 'string' } },
                },
              },
            },
          },
        },
        async () => ({ message: 'PowerTable plugin - GET /hello', plugin: NAME, version: VERSION, tables }),
      );
    },
    cleanup(ctx) {
      ctx.log.info('powertable cleaned up');
    },
  };
});
