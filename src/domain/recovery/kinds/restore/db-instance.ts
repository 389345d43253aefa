import { z } from 'zod';
import type { DbInstance } from '../../../../adapters/aws/port.js';

/** The instance a snapshot restore copies the placement of, as its plan stored it (JSON drops an absent endpoint). */
export const dbInstanceSchema: z.ZodType<DbInstance> = z
  .object({
    id: z.string(),
    status: z.string(),
    endpoint: z.object({ address: z.string(), port: z.number() }).optional(),
    engine: z.string(),
    engineVersion: z.string(),
    instanceClass: z.string(),
    subnetGroupName: z.string().optional(),
    vpcSecurityGroupIds: z.array(z.string()).optional(),
    multiAz: z.boolean().optional(),
    publiclyAccessible: z.boolean().optional(),
  })
  .transform((instance) => ({ ...instance, endpoint: instance.endpoint }));
