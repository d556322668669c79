import { describe, expect, it } from "vitest";
import { classifyAddress, isNonPublicAddress } from "./classify-address.js";

describe("classifyAddress", () => {
  it.each([
    ["127.0.0.1", "loopback"],
    ["10.1.2.3", "private"],
    ["172.16.0.1", "private"],
    ["192.168.1.1", "private"],
    ["169.254.169.254", "linkLocal"],
    ["100.64.0.1", "carrierGradeNat"],
    ["0.0.0.0", "unspecified"],
    ["255.255.255.255", "broadcast"],
    ["224.0.0.1", "multicast"],
    ["192.0.0.8", "reserved"],
    ["192.0.2.1", "reserved"],
    ["198.18.0.1", "reserved"],
    ["203.0.113.9", "reserved"],
    ["240.0.0.1", "reserved"],
    ["::", "unspecified"],
    ["::1", "loopback"],
    ["fe80::1", "linkLocal"],
    ["fc00::1", "uniqueLocal"],
    ["fd12:3456::1", "uniqueLocal"],
    ["fec0::", "deprecatedSiteLocal"],
    ["ff02::1", "multicast"],
    ["2001:db8::1", "reserved"],
    ["100::1", "discard"],
    ["::7f00:1", "ipv4Compatible"],
    ["::a9fe:a9fe", "ipv4Compatible"],
    ["::ffff:127.0.0.1", "ipv4Mapped(loopback)"],
    ["::ffff:7f00:1", "ipv4Mapped(loopback)"],
    ["::ffff:a9fe:a9fe", "ipv4Mapped(linkLocal)"],
    ["::ffff:0:7f00:1", "rfc6145(loopback)"],
    ["64:ff9b::a9fe:a9fe", "rfc6052(linkLocal)"],
    ["64:ff9b::7f00:1", "rfc6052(loopback)"],
    ["64:ff9b:1::1", "nat64LocalUse"],
    ["64:ff9b:1::5db8:d822", "nat64LocalUse"],
    ["2002:a9fe:a9fe::", "6to4(linkLocal)"],
    ["2002:7f00:1::1", "6to4(loopback)"],
    ["2001:0:4136:e378:8000:63bf:3fff:fdd2", "teredo"],
    ["2001:2::1", "benchmarking"],
    ["3fff::1", "reserved"],
    ["5f00::1", "segmentRouting"],
    ["4000::1", "notGlobalUnicast"],
    ["localhost", "not_an_address"],
    ["127.1", "not_an_address"],
    ["0x7f000001", "not_an_address"],
    ["", "not_an_address"],
  ])("refuses %s as %s", (address, range) => {
    expect(classifyAddress(address)).toEqual({ public: false, range });
    expect(isNonPublicAddress(address)).toBe(true);
  });

  it.each(["93.184.216.34", "1.1.1.1", "8.8.8.8", "2606:4700:4700::1111", "2a00:1450:4001:80b::200e", "::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1"])(
    "allows the public address %s",
    (address) => {
      expect(classifyAddress(address).public).toBe(true);
      expect(isNonPublicAddress(address)).toBe(false);
    },
  );
});
