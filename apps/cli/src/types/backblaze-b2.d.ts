// backblaze-b2 ships no types; only what `fleet doctor` calls is declared.
declare module "backblaze-b2" {
  interface B2Options {
    applicationKeyId: string;
    applicationKey: string;
    axios?: Record<string, unknown>;
    retry?: Record<string, unknown>;
  }
  interface B2Response<T> {
    status: number;
    data: T;
  }
  interface B2Allowed {
    capabilities?: string[];
    bucketId?: string | null;
    bucketName?: string | null;
    namePrefix?: string | null;
  }
  interface B2AuthorizeData {
    accountId: string;
    apiUrl: string;
    allowed?: B2Allowed;
  }
  interface B2Bucket {
    bucketId: string;
    bucketName: string;
    /** allPublic, allPrivate, or another private type (snapshot, restricted). */
    bucketType: string;
  }
  class B2 {
    constructor(options: B2Options);
    authorize(args?: { axiosOverride?: Record<string, unknown> }): Promise<B2Response<B2AuthorizeData>>;
    getBucket(args: { bucketName?: string; bucketId?: string }): Promise<B2Response<{ buckets: B2Bucket[] }>>;
  }
  export = B2;
}
