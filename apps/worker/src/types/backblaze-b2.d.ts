// backblaze-b2 ships no types; this covers the calls b2-storage.ts makes. Every call resolves to
// the axios response, whose `data` is B2's JSON reply.
declare module "backblaze-b2" {
  interface B2Response<T> {
    status: number;
    data: T;
  }
  interface AxiosPassThrough {
    axios?: Record<string, unknown>;
    axiosOverride?: Record<string, unknown>;
  }
  interface B2Options {
    applicationKeyId: string;
    applicationKey: string;
    axios?: Record<string, unknown>;
    retry?: { retries?: number };
  }
  export interface B2Authorization {
    accountId: string;
    authorizationToken: string;
    apiUrl: string;
    downloadUrl: string;
    recommendedPartSize?: number;
    absoluteMinimumPartSize?: number;
    allowed?: { bucketId?: string | null; bucketName?: string | null; capabilities?: string[]; namePrefix?: string | null };
  }
  export interface B2UploadUrl {
    uploadUrl: string;
    authorizationToken: string;
  }
  export interface B2FileInfo {
    fileId: string;
    fileName: string;
    contentLength: number;
    contentSha1: string;
    fileInfo?: Record<string, string>;
    uploadTimestamp?: number;
  }
  export interface B2Part {
    fileId: string;
    partNumber: number;
    contentLength: number;
    contentSha1: string;
  }
  class B2 {
    constructor(options: B2Options);
    authorizationToken: string | null;
    apiUrl: string | null;
    downloadUrl: string | null;
    authorize(args?: AxiosPassThrough): Promise<B2Response<B2Authorization>>;
    getBucket(
      args: { bucketName: string } & AxiosPassThrough,
    ): Promise<B2Response<{ buckets: Array<{ bucketId: string; bucketName: string; bucketType: string }> }>>;
    getUploadUrl(args: { bucketId: string } & AxiosPassThrough): Promise<B2Response<B2UploadUrl>>;
    uploadFile(
      args: {
        uploadUrl: string;
        uploadAuthToken: string;
        fileName: string;
        data: Buffer | NodeJS.ReadableStream;
        contentLength?: number;
        hash?: string;
        mime?: string;
        info?: Record<string, string>;
      } & AxiosPassThrough,
    ): Promise<B2Response<B2FileInfo>>;
    startLargeFile(args: { bucketId: string; fileName: string; contentType?: string } & AxiosPassThrough): Promise<B2Response<{ fileId: string }>>;
    getUploadPartUrl(args: { fileId: string } & AxiosPassThrough): Promise<B2Response<B2UploadUrl>>;
    uploadPart(
      args: {
        uploadUrl: string;
        uploadAuthToken: string;
        partNumber: number;
        data: Buffer | NodeJS.ReadableStream;
        contentLength?: number;
        hash?: string;
      } & AxiosPassThrough,
    ): Promise<B2Response<B2Part>>;
    finishLargeFile(args: { fileId: string; partSha1Array: string[] } & AxiosPassThrough): Promise<B2Response<B2FileInfo>>;
    cancelLargeFile(args: { fileId: string } & AxiosPassThrough): Promise<B2Response<unknown>>;
    getFileInfo(args: { fileId: string } & AxiosPassThrough): Promise<B2Response<B2FileInfo>>;
    listFileNames(
      args: { bucketId: string; prefix?: string; startFileName?: string; maxFileCount?: number } & AxiosPassThrough,
    ): Promise<B2Response<{ files: B2FileInfo[]; nextFileName: string | null }>>;
    getDownloadAuthorization(
      args: { bucketId: string; fileNamePrefix: string; validDurationInSeconds: number } & AxiosPassThrough,
    ): Promise<B2Response<{ authorizationToken: string }>>;
  }
  export default B2;
}
