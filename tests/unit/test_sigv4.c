/* test_sigv4.c - SigV4 verification: AWS's published test suite, botocore-signed ECR requests,
 * and the accept/reject paths of sigv4_parse_authorization and sigv4_verify.
 *
 * The "aws-sig-v4-test-suite" vectors below (credentials AKIDEXAMPLE, region us-east-1, service
 * "service", 20150830T123600Z) are AWS's data (Apache-2.0), taken from the copy in botocore's
 * tests/unit/auth/aws4_testsuite: request parts from .req, and the expected .creq, .sts and the
 * signature from .authz. Repeated request headers are given joined with ',' as the HTTP layer
 * hands them over. The botocore vectors were produced with botocore 1.43 SigV4Auth with the clock
 * pinned to 20240301T102030Z. */
#include "base/feat.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/mem.h"
#include "crypto/sigv4.h"

#define SUITE_SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define SUITE_DATE "20150830T123600Z"
#define SUITE_NOW_MS 1440938160000LL /* 2015-08-30T12:36:00Z */
#define BOTO_SECRET "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
#define BOTO_DATE "20240301T102030Z"
#define BOTO_NOW_MS 1709288430000LL /* 2024-03-01T10:20:30Z */
#define EMPTY_HASH "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define MAX_HDRS 6

struct vector {
	const char *name;
	const char *method;
	const char *path;
	const char *query;
	const char *headers[MAX_HDRS][2]; /* lowercase name, value as sent */
	const char *payload_hash;
	const char *authz;
	const char *creq;
	const char *sts;
	const char *sig;
};

static const struct vector suite[] = {
    {.name = "get-header-key-duplicate",
     .method = "GET",
     .path = "/",
     .query = NULL,
     .headers = {{"host", "example.amazonaws.com"},
                 {"my-header1", "value2,value2,value1"},
                 {"x-amz-date", "20150830T123600Z"}},
     .payload_hash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
     .authz = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/servi"
              "ce/aws4_request, SignedHeaders=host;my-header1;x-amz-date, Signa"
              "ture=c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5"
              "138ea",
     .creq = "GET\n"
             "/\n"
             "\n"
             "host:example.amazonaws.com\n"
             "my-header1:value2,value2,value1\n"
             "x-amz-date:20150830T123600Z\n"
             "\n"
             "host;my-header1;x-amz-date\n"
             "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
     .sts = "AWS4-HMAC-SHA256\n"
            "20150830T123600Z\n"
            "20150830/us-east-1/service/aws4_request\n"
            "dc7f04a3abfde8d472b0ab1a418b741b7c67174dad1551b4117b15527fbe966c",
     .sig = "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea"},
    {.name = "get-header-value-multiline",
     .method = "GET",
     .path = "/",
     .query = NULL,
     .headers = {{"host", "example.amazonaws.com"},
                 {"my-header1", "value1\n"
                                "  value2\n"
                                "     value3"},
                 {"x-amz-date", "20150830T123600Z"}},
     .payload_hash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
     .authz = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/servi"
              "ce/aws4_request, SignedHeaders=host;my-header1;x-amz-date, Signa"
              "ture=cfd34249e4b1c8d6b91ef74165d41a32e5fab3306300901bb65a51a7357"
              "5eefd",
     .creq = "GET\n"
             "/\n"
             "\n"
             "host:example.amazonaws.com\n"
             "my-header1:value1 value2 value3\n"
             "x-amz-date:20150830T123600Z\n"
             "\n"
             "host;my-header1;x-amz-date\n"
             "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
     .sts = "AWS4-HMAC-SHA256\n"
            "20150830T123600Z\n"
            "20150830/us-east-1/service/aws4_request\n"
            "e99419459a677bc11de234014be3c4e72c1ea5b454ceb58b613061f5d7a162e8",
     .sig = "cfd34249e4b1c8d6b91ef74165d41a32e5fab3306300901bb65a51a73575eefd"},
    {.name = "get-header-value-order",
     .method = "GET",
     .path = "/",
     .query = NULL,
     .headers = {{"host", "example.amazonaws.com"},
                 {"my-header1", "value4,value1,value3,value2"},
                 {"x-amz-date", "20150830T123600Z"}},
     .payload_hash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
     .authz = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/servi"
              "ce/aws4_request, SignedHeaders=host;my-header1;x-amz-date, Signa"
              "ture=08c7e5a9acfcfeb3ab6b2185e75ce8b1deb5e634ec47601a50643f830c7"
              "55c01",
     .creq = "GET\n"
             "/\n"
             "\n"
             "host:example.amazonaws.com\n"
             "my-header1:value4,value1,value3,value2\n"
             "x-amz-date:20150830T123600Z\n"
             "\n"
             "host;my-header1;x-amz-date\n"
             "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
     .sts = "AWS4-HMAC-SHA256\n"
            "20150830T123600Z\n"
            "20150830/us-east-1/service/aws4_request\n"
            "31ce73cd3f3d9f66977ad3dd957dc47af14df92fcd8509f59b349e9137c58b86",
     .sig = "08c7e5a9acfcfeb3ab6b2185e75ce8b1deb5e634ec47601a50643f830c755c01"},
    {.name = "get-header-value-trim",
     .method = "GET",
     .path = "/",
     .query = NULL,
     .headers = {{"host", "example.amazonaws.com"},
                 {"my-header1", " value1"},
                 {"my-header2", " \"a   b   c\""},
                 {"x-amz-date", "20150830T123600Z"}},
     .payload_hash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
     .authz = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/servi"
              "ce/aws4_request, SignedHeaders=host;my-header1;my-header2;x-amz-"
              "date, Signature=acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b36705"
              "5dee359757a9c736",
     .creq = "GET\n"
             "/\n"
             "\n"
             "host:example.amazonaws.com\n"
             "my-header1:value1\n"
             "my-header2:\"a b c\"\n"
             "x-amz-date:20150830T123600Z\n"
             "\n"
             "host;my-header1;my-header2;x-amz-date\n"
             "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
     .sts = "AWS4-HMAC-SHA256\n"
            "20150830T123600Z\n"
            "20150830/us-east-1/service/aws4_request\n"
            "a726db9b0df21c14f559d0a978e563112acb1b9e05476f0a6a1c7d68f28605c7",
     .sig = "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736"},
    {.name = "get-relative",
     .method = "GET",
     .path = "/example/..",
     .query = NULL,
     .headers = {{"host", "example.amazonaws.com"}, {"x-amz-date", "20150830T123600Z"}},
     .payload_hash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
     .authz = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/servi"
              "ce/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00f"
              "a31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
     .creq = "GET\n"
             "/\n"
             "\n"
             "host:example.amazonaws.com\n"
             "x-amz-date:20150830T123600Z\n"
             "\n"
             "host;x-amz-date\n"
             "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
     .sts = "AWS4-HMAC-SHA256\n"
            "20150830T123600Z\n"
            "20150830/us-east-1/service/aws4_request\n"
            "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63",
     .sig = "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"},
    {.name = "get-relative-relative",
     .method = "GET",
     .path = "/example1/example2/../..",
     .query = NULL,
     .headers = {{"host", "example.amazonaws.com"}, {"x-amz-date", "20150830T123600Z"}},
     .payload_hash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
     .authz = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/servi"
              "ce/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00f"
              "a31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
     .creq = "GET\n"
             "/\n"
             "\n"
             "host:example.amazonaws.com\n"
             "x-amz-date:20150830T123600Z\n"
             "\n"
             "host;x-amz-date\n"
             "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
     .sts = "AWS4-HMAC-SHA256\n"
            "20150830T123600Z\n"
            "20150830/us-east-1/service/aws4_request\n"
            "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63",
     .sig = "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"},
    {.name = "get-slash",
     .method = "GET",
     .path = "//",
     .query = NULL,
     .headers = {{"host", "example.amazonaws.com"}, {"x-amz-date", "20150830T123600Z"}},
     .payload_hash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
     .authz = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/servi"
              "ce/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00f"
              "a31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
     .creq = "GET\n"
             "/\n"
             "\n"
             "host:example.amazonaws.com\n"
             "x-amz-date:20150830T123600Z\n"
             "\n"
             "host;x-amz-date\n"
             "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
     .sts = "AWS4-HMAC-SHA256\n"
            "20150830T123600Z\n"
            "20150830/us-east-1/service/aws4_request\n"
            "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63",
     .sig = "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"},
    {.name = "get-slash-dot-slash",
     .method = "GET",
     .path = "/./",
     .query = NULL,
     .headers = {{"host", "example.amazonaws.com"}, {"x-amz-date", "20150830T123600Z"}},
     .payload_hash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
     .authz = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/servi"
              "ce/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00f"
              "a31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
     .creq = "GET\n"
             "/\n"
             "\n"
             "host:example.amazonaws.com\n"
             "x-amz-date:20150830T123600Z\n"
             "\n"
             "host;x-amz-date\n"
             "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
     .sts = "AWS4-HMAC-SHA256\n"
            "20150830T123600Z\n"
            "20150830/us-east-1/service/aws4_request\n"
            "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63",
     .sig = "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"},
    {.name = "get-slash-pointless-dot",
     .method = "GET",
     .path = "/./example",
     .query = NULL,
     .headers = {{"host", "example.amazonaws.com"}, {"x-amz-date", "20150830T123600Z"}},
     .payload_hash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
     .authz = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/servi"
              "ce/aws4_request, SignedHeaders=host;x-amz-date, Signature=ef75d9"
              "6142cf21edca26f06005da7988e4f8dc83a165a80865db7089db637ec5",
     .creq = "GET\n"
             "/example\n"
             "\n"
             "host:example.amazonaws.com\n"
             "x-amz-date:20150830T123600Z\n"
             "\n"
             "host;x-amz-date\n"
             "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
     .sts = "AWS4-HMAC-SHA256\n"
            "20150830T123600Z\n"
            "20150830/us-east-1/service/aws4_request\n"
            "214d50c111a8edc4819da6a636336472c916b5240f51e9a51b5c3305180cf702",
     .sig = "ef75d96142cf21edca26f06005da7988e4f8dc83a165a80865db7089db637ec5"},
    {.name = "get-slashes",
     .method = "GET",
     .path = "//example//",
     .query = NULL,
     .headers = {{"host", "example.amazonaws.com"}, {"x-amz-date", "20150830T123600Z"}},
     .payload_hash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
     .authz = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/servi"
              "ce/aws4_request, SignedHeaders=host;x-amz-date, Signature=9a624b"
              "d73a37c9a373b5312afbebe7a714a789de108f0bdfe846570885f57e84",
     .creq = "GET\n"
             "/example/\n"
             "\n"
             "host:example.amazonaws.com\n"
             "x-amz-date:20150830T123600Z\n"
             "\n"
             "host;x-amz-date\n"
             "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
     .sts = "AWS4-HMAC-SHA256\n"
            "20150830T123600Z\n"
            "20150830/us-east-1/service/aws4_request\n"
            "cb96b4ac96d501f7c5c15bc6d67b3035061cfced4af6585ad927f7e6c985c015",
     .sig = "9a624bd73a37c9a373b5312afbebe7a714a789de108f0bdfe846570885f57e84"},
    {.name = "get-space",
     .method = "GET",
     .path = "/example space/",
     .query = NULL,
     .headers = {{"host", "example.amazonaws.com"}, {"x-amz-date", "20150830T123600Z"}},
     .payload_hash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
     .authz = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/servi"
              "ce/aws4_request, SignedHeaders=host;x-amz-date, Signature=652487"
              "583200325589f1fba4c7e578f72c47cb61beeca81406b39ddec1366741",
     .creq = "GET\n"
             "/example%20space/\n"
             "\n"
             "host:example.amazonaws.com\n"
             "x-amz-date:20150830T123600Z\n"
             "\n"
             "host;x-amz-date\n"
             "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
     .sts = "AWS4-HMAC-SHA256\n"
            "20150830T123600Z\n"
            "20150830/us-east-1/service/aws4_request\n"
            "63ee75631ed7234ae61b5f736dfc7754cdccfedbff4b5128a915706ee9390d86",
     .sig = "652487583200325589f1fba4c7e578f72c47cb61beeca81406b39ddec1366741"},
    {.name = "get-special-character",
     .method = "GET",
     .path = "/example/$delete",
     .query = NULL,
     .headers = {{"host", "example.amazonaws.com"}, {"x-amz-date", "20150830T123600Z"}},
     .payload_hash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
     .authz = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/servi"
              "ce/aws4_request, SignedHeaders=host;x-amz-date, Signature=a853c9"
              "b21b528b19643d00910d35b83a10c366a10833ceefb45edd6c80e40f27",
     .creq = "GET\n"
             "/example/%24delete\n"
             "\n"
             "host:example.amazonaws.com\n"
             "x-amz-date:20150830T123600Z\n"
             "\n"
             "host;x-amz-date\n"
             "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
     .sts = "AWS4-HMAC-SHA256\n"
            "20150830T123600Z\n"
            "20150830/us-east-1/service/aws4_request\n"
            "4053e45b5cef7cec5e17f736b1c12b3faf0388fd4c0bd24326386f132039ce5c",
     .sig = "a853c9b21b528b19643d00910d35b83a10c366a10833ceefb45edd6c80e40f27"},
    {.name = "get-unreserved",
     .method = "GET",
     .path = "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvw"
             "xyz",
     .query = NULL,
     .headers = {{"host", "example.amazonaws.com"}, {"x-amz-date", "20150830T123600Z"}},
     .payload_hash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
     .authz = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/servi"
              "ce/aws4_request, SignedHeaders=host;x-amz-date, Signature=07ef74"
              "94c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f",
     .creq = "GET\n"
             "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvw"
             "xyz\n"
             "\n"
             "host:example.amazonaws.com\n"
             "x-amz-date:20150830T123600Z\n"
             "\n"
             "host;x-amz-date\n"
             "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
     .sts = "AWS4-HMAC-SHA256\n"
            "20150830T123600Z\n"
            "20150830/us-east-1/service/aws4_request\n"
            "6a968768eefaa713e2a6b16b589a8ea192661f098f37349f4e2c0082757446f9",
     .sig = "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f"},
    {.name = "get-utf8",
     .method = "GET",
     .path = "/\341\210\264",
     .query = NULL,
     .headers = {{"host", "example.amazonaws.com"}, {"x-amz-date", "20150830T123600Z"}},
     .payload_hash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
     .authz = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/servi"
              "ce/aws4_request, SignedHeaders=host;x-amz-date, Signature=831801"
              "8e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85",
     .creq = "GET\n"
             "/%E1%88%B4\n"
             "\n"
             "host:example.amazonaws.com\n"
             "x-amz-date:20150830T123600Z\n"
             "\n"
             "host;x-amz-date\n"
             "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
     .sts = "AWS4-HMAC-SHA256\n"
            "20150830T123600Z\n"
            "20150830/us-east-1/service/aws4_request\n"
            "2a0a97d02205e45ce2e994789806b19270cfbbb0921b278ccf58f5249ac42102",
     .sig = "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85"},
    {.name = "get-vanilla",
     .method = "GET",
     .path = "/",
     .query = NULL,
     .headers = {{"host", "example.amazonaws.com"}, {"x-amz-date", "20150830T123600Z"}},
     .payload_hash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
     .authz = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/servi"
              "ce/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00f"
              "a31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
     .creq = "GET\n"
             "/\n"
             "\n"
             "host:example.amazonaws.com\n"
             "x-amz-date:20150830T123600Z\n"
             "\n"
             "host;x-amz-date\n"
             "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
     .sts = "AWS4-HMAC-SHA256\n"
            "20150830T123600Z\n"
            "20150830/us-east-1/service/aws4_request\n"
            "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63",
     .sig = "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"},
    {.name = "get-vanilla-empty-query-key",
     .method = "GET",
     .path = "/",
     .query = "Param1=value1",
     .headers = {{"host", "example.amazonaws.com"}, {"x-amz-date", "20150830T123600Z"}},
     .payload_hash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
     .authz = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/servi"
              "ce/aws4_request, SignedHeaders=host;x-amz-date, Signature=a67d58"
              "2fa61cc504c4bae71f336f98b97f1ea3c7a6bfe1b6e45aec72011b9aeb",
     .creq = "GET\n"
             "/\n"
             "Param1=value1\n"
             "host:example.amazonaws.com\n"
             "x-amz-date:20150830T123600Z\n"
             "\n"
             "host;x-amz-date\n"
             "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
     .sts = "AWS4-HMAC-SHA256\n"
            "20150830T123600Z\n"
            "20150830/us-east-1/service/aws4_request\n"
            "1e24db194ed7d0eec2de28d7369675a243488e08526e8c1c73571282f7c517ab",
     .sig = "a67d582fa61cc504c4bae71f336f98b97f1ea3c7a6bfe1b6e45aec72011b9aeb"},
    {.name = "get-vanilla-query",
     .method = "GET",
     .path = "/",
     .query = NULL,
     .headers = {{"host", "example.amazonaws.com"}, {"x-amz-date", "20150830T123600Z"}},
     .payload_hash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
     .authz = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/servi"
              "ce/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00f"
              "a31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
     .creq = "GET\n"
             "/\n"
             "\n"
             "host:example.amazonaws.com\n"
             "x-amz-date:20150830T123600Z\n"
             "\n"
             "host;x-amz-date\n"
             "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
     .sts = "AWS4-HMAC-SHA256\n"
            "20150830T123600Z\n"
            "20150830/us-east-1/service/aws4_request\n"
            "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63",
     .sig = "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"},
    {.name = "get-vanilla-query-order-encoded",
     .method = "GET",
     .path = "/",
     .query = "Param-3=Value3&Param=Value2&%E1%88%B4=Value1",
     .headers = {{"host", "example.amazonaws.com"}, {"x-amz-date", "20150830T123600Z"}},
     .payload_hash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
     .authz = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/servi"
              "ce/aws4_request, SignedHeaders=host;x-amz-date, Signature=371d37"
              "13e185cc334048618a97f809c9ffe339c62934c032af5a0e595648fcac",
     .creq = "GET\n"
             "/\n"
             "%E1%88%B4=Value1&Param=Value2&Param-3=Value3\n"
             "host:example.amazonaws.com\n"
             "x-amz-date:20150830T123600Z\n"
             "\n"
             "host;x-amz-date\n"
             "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
     .sts = "AWS4-HMAC-SHA256\n"
            "20150830T123600Z\n"
            "20150830/us-east-1/service/aws4_request\n"
            "868294f5c38bd141c4972a373a76654f1418a8e4fc18b2e7903ae45e8ae0ec71",
     .sig = "371d3713e185cc334048618a97f809c9ffe339c62934c032af5a0e595648fcac"},
    {.name = "get-vanilla-query-order-key",
     .method = "GET",
     .path = "/",
     .query = "Param1=value2&Param1=Value1",
     .headers = {{"host", "example.amazonaws.com"}, {"x-amz-date", "20150830T123600Z"}},
     .payload_hash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
     .authz = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/servi"
              "ce/aws4_request, SignedHeaders=host;x-amz-date, Signature=eedbc4"
              "e291e521cf13422ffca22be7d2eb8146eecf653089df300a15b2382bd1",
     .creq = "GET\n"
             "/\n"
             "Param1=Value1&Param1=value2\n"
             "host:example.amazonaws.com\n"
             "x-amz-date:20150830T123600Z\n"
             "\n"
             "host;x-amz-date\n"
             "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
     .sts = "AWS4-HMAC-SHA256\n"
            "20150830T123600Z\n"
            "20150830/us-east-1/service/aws4_request\n"
            "704b4cef673542d84cdff252633f065e8daeba5f168b77116f8b1bcaf3d38f89",
     .sig = "eedbc4e291e521cf13422ffca22be7d2eb8146eecf653089df300a15b2382bd1"},
    {.name = "get-vanilla-query-order-key-case",
     .method = "GET",
     .path = "/",
     .query = "Param2=value2&Param1=value1",
     .headers = {{"host", "example.amazonaws.com"}, {"x-amz-date", "20150830T123600Z"}},
     .payload_hash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
     .authz = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/servi"
              "ce/aws4_request, SignedHeaders=host;x-amz-date, Signature=b97d91"
              "8cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
     .creq = "GET\n"
             "/\n"
             "Param1=value1&Param2=value2\n"
             "host:example.amazonaws.com\n"
             "x-amz-date:20150830T123600Z\n"
             "\n"
             "host;x-amz-date\n"
             "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
     .sts = "AWS4-HMAC-SHA256\n"
            "20150830T123600Z\n"
            "20150830/us-east-1/service/aws4_request\n"
            "816cd5b414d056048ba4f7c5386d6e0533120fb1fcfa93762cf0fc39e2cf19e0",
     .sig = "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"},
    {.name = "get-vanilla-query-order-value",
     .method = "GET",
     .path = "/",
     .query = "Param1=value2&Param1=value1",
     .headers = {{"host", "example.amazonaws.com"}, {"x-amz-date", "20150830T123600Z"}},
     .payload_hash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
     .authz = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/servi"
              "ce/aws4_request, SignedHeaders=host;x-amz-date, Signature=5772ee"
              "d61e12b33fae39ee5e7012498b51d56abc0abb7c60486157bd471c4694",
     .creq = "GET\n"
             "/\n"
             "Param1=value1&Param1=value2\n"
             "host:example.amazonaws.com\n"
             "x-amz-date:20150830T123600Z\n"
             "\n"
             "host;x-amz-date\n"
             "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
     .sts = "AWS4-HMAC-SHA256\n"
            "20150830T123600Z\n"
            "20150830/us-east-1/service/aws4_request\n"
            "c968629d70850097a2d8781c9bf7edcb988b04cac14cca9be4acc3595f884606",
     .sig = "5772eed61e12b33fae39ee5e7012498b51d56abc0abb7c60486157bd471c4694"},
    {.name = "get-vanilla-query-unreserved",
     .method = "GET",
     .path = "/",
     .query = "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwx"
              "yz=-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstu"
              "vwxyz",
     .headers = {{"host", "example.amazonaws.com"}, {"x-amz-date", "20150830T123600Z"}},
     .payload_hash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
     .authz = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/servi"
              "ce/aws4_request, SignedHeaders=host;x-amz-date, Signature=9c3e54"
              "bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197",
     .creq = "GET\n"
             "/\n"
             "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwx"
             "yz=-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstu"
             "vwxyz\n"
             "host:example.amazonaws.com\n"
             "x-amz-date:20150830T123600Z\n"
             "\n"
             "host;x-amz-date\n"
             "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
     .sts = "AWS4-HMAC-SHA256\n"
            "20150830T123600Z\n"
            "20150830/us-east-1/service/aws4_request\n"
            "c30d4703d9f799439be92736156d47ccfb2d879ddf56f5befa6d1d6aab979177",
     .sig = "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197"},
    {.name = "get-vanilla-utf8-query",
     .method = "GET",
     .path = "/",
     .query = "\341\210\264=bar",
     .headers = {{"host", "example.amazonaws.com"}, {"x-amz-date", "20150830T123600Z"}},
     .payload_hash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
     .authz = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/servi"
              "ce/aws4_request, SignedHeaders=host;x-amz-date, Signature=2cdec8"
              "eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04",
     .creq = "GET\n"
             "/\n"
             "%E1%88%B4=bar\n"
             "host:example.amazonaws.com\n"
             "x-amz-date:20150830T123600Z\n"
             "\n"
             "host;x-amz-date\n"
             "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
     .sts = "AWS4-HMAC-SHA256\n"
            "20150830T123600Z\n"
            "20150830/us-east-1/service/aws4_request\n"
            "eb30c5bed55734080471a834cc727ae56beb50e5f39d1bff6d0d38cb192a7073",
     .sig = "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04"},
    {.name = "get-vanilla-with-session-token",
     .method = "GET",
     .path = "/",
     .query = NULL,
     .headers = {{"host", "example.amazonaws.com"},
                 {"x-amz-date", "20150830T123600Z"},
                 {"x-amz-security-token",
                  "6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267"}},
     .payload_hash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
     .authz = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/servi"
              "ce/aws4_request, SignedHeaders=host;x-amz-date;x-amz-security-to"
              "ken, Signature=07ec1639c89043aa0e3e2de82b96708f198cceab042d4a970"
              "44c66dd9f74e7f8",
     .creq = "GET\n"
             "/\n"
             "\n"
             "host:example.amazonaws.com\n"
             "x-amz-date:20150830T123600Z\n"
             "x-amz-security-token:6e86291e8372ff2a2260956d9b8aae1d763fbf315fa"
             "00fa31553b73ebf194267\n"
             "\n"
             "host;x-amz-date;x-amz-security-token\n"
             "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
     .sts = "AWS4-HMAC-SHA256\n"
            "20150830T123600Z\n"
            "20150830/us-east-1/service/aws4_request\n"
            "067b36aa60031588cea4a4cde1f21215227a047690c72247f1d70b32fbbfad2b",
     .sig = "07ec1639c89043aa0e3e2de82b96708f198cceab042d4a97044c66dd9f74e7f8"},
    {.name = "post-header-key-case",
     .method = "POST",
     .path = "/",
     .query = NULL,
     .headers = {{"host", "example.amazonaws.com"}, {"x-amz-date", "20150830T123600Z"}},
     .payload_hash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
     .authz = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/servi"
              "ce/aws4_request, SignedHeaders=host;x-amz-date, Signature=5da7c1"
              "a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b",
     .creq = "POST\n"
             "/\n"
             "\n"
             "host:example.amazonaws.com\n"
             "x-amz-date:20150830T123600Z\n"
             "\n"
             "host;x-amz-date\n"
             "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
     .sts = "AWS4-HMAC-SHA256\n"
            "20150830T123600Z\n"
            "20150830/us-east-1/service/aws4_request\n"
            "553f88c9e4d10fc9e109e2aeb65f030801b70c2f6468faca261d401ae622fc87",
     .sig = "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"},
    {.name = "post-header-key-sort",
     .method = "POST",
     .path = "/",
     .query = NULL,
     .headers = {{"host", "example.amazonaws.com"},
                 {"my-header1", "value1"},
                 {"x-amz-date", "20150830T123600Z"}},
     .payload_hash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
     .authz = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/servi"
              "ce/aws4_request, SignedHeaders=host;my-header1;x-amz-date, Signa"
              "ture=c5410059b04c1ee005303aed430f6e6645f61f4dc9e1461ec8f8916fdf1"
              "8852c",
     .creq = "POST\n"
             "/\n"
             "\n"
             "host:example.amazonaws.com\n"
             "my-header1:value1\n"
             "x-amz-date:20150830T123600Z\n"
             "\n"
             "host;my-header1;x-amz-date\n"
             "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
     .sts = "AWS4-HMAC-SHA256\n"
            "20150830T123600Z\n"
            "20150830/us-east-1/service/aws4_request\n"
            "9368318c2967cf6de74404b30c65a91e8f6253e0a8659d6d5319f1a812f87d65",
     .sig = "c5410059b04c1ee005303aed430f6e6645f61f4dc9e1461ec8f8916fdf18852c"},
    {.name = "post-header-value-case",
     .method = "POST",
     .path = "/",
     .query = NULL,
     .headers = {{"host", "example.amazonaws.com"},
                 {"my-header1", "VALUE1"},
                 {"x-amz-date", "20150830T123600Z"}},
     .payload_hash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
     .authz = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/servi"
              "ce/aws4_request, SignedHeaders=host;my-header1;x-amz-date, Signa"
              "ture=cdbc9802e29d2942e5e10b5bccfdd67c5f22c7c4e8ae67b53629efa58b9"
              "74b7d",
     .creq = "POST\n"
             "/\n"
             "\n"
             "host:example.amazonaws.com\n"
             "my-header1:VALUE1\n"
             "x-amz-date:20150830T123600Z\n"
             "\n"
             "host;my-header1;x-amz-date\n"
             "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
     .sts = "AWS4-HMAC-SHA256\n"
            "20150830T123600Z\n"
            "20150830/us-east-1/service/aws4_request\n"
            "d51ced243e649e3de6ef63afbbdcbca03131a21a7103a1583706a64618606a93",
     .sig = "cdbc9802e29d2942e5e10b5bccfdd67c5f22c7c4e8ae67b53629efa58b974b7d"},
    {.name = "post-sts-header-after",
     .method = "POST",
     .path = "/",
     .query = NULL,
     .headers = {{"host", "example.amazonaws.com"}, {"x-amz-date", "20150830T123600Z"}},
     .payload_hash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
     .authz = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/servi"
              "ce/aws4_request, SignedHeaders=host;x-amz-date, Signature=5da7c1"
              "a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b",
     .creq = "POST\n"
             "/\n"
             "\n"
             "host:example.amazonaws.com\n"
             "x-amz-date:20150830T123600Z\n"
             "\n"
             "host;x-amz-date\n"
             "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
     .sts = "AWS4-HMAC-SHA256\n"
            "20150830T123600Z\n"
            "20150830/us-east-1/service/aws4_request\n"
            "553f88c9e4d10fc9e109e2aeb65f030801b70c2f6468faca261d401ae622fc87",
     .sig = "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"},
    {.name = "post-sts-header-before",
     .method = "POST",
     .path = "/",
     .query = NULL,
     .headers = {{"host", "example.amazonaws.com"},
                 {"x-amz-date", "20150830T123600Z"},
                 {"x-amz-security-token",
                  "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTw"
                  "dQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi"
                  "/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5V"
                  "SXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPk"
                  "UL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabI"
                  "Qwj2ICCR/oLxBA=="}},
     .payload_hash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
     .authz = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/servi"
              "ce/aws4_request, SignedHeaders=host;x-amz-date;x-amz-security-to"
              "ken, Signature=85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c"
              "64533a82be05ead",
     .creq = "POST\n"
             "/\n"
             "\n"
             "host:example.amazonaws.com\n"
             "x-amz-date:20150830T123600Z\n"
             "x-amz-security-token:AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPB"
             "SM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8"
             "YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsbur"
             "EDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo"
             "0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9"
             "KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA==\n"
             "\n"
             "host;x-amz-date;x-amz-security-token\n"
             "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
     .sts = "AWS4-HMAC-SHA256\n"
            "20150830T123600Z\n"
            "20150830/us-east-1/service/aws4_request\n"
            "c237e1b440d4c63c32ca95b5b99481081cb7b13c7e40434868e71567c1a882f6",
     .sig = "85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead"},
    {.name = "post-vanilla",
     .method = "POST",
     .path = "/",
     .query = NULL,
     .headers = {{"host", "example.amazonaws.com"}, {"x-amz-date", "20150830T123600Z"}},
     .payload_hash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
     .authz = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/servi"
              "ce/aws4_request, SignedHeaders=host;x-amz-date, Signature=5da7c1"
              "a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b",
     .creq = "POST\n"
             "/\n"
             "\n"
             "host:example.amazonaws.com\n"
             "x-amz-date:20150830T123600Z\n"
             "\n"
             "host;x-amz-date\n"
             "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
     .sts = "AWS4-HMAC-SHA256\n"
            "20150830T123600Z\n"
            "20150830/us-east-1/service/aws4_request\n"
            "553f88c9e4d10fc9e109e2aeb65f030801b70c2f6468faca261d401ae622fc87",
     .sig = "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"},
    {.name = "post-vanilla-empty-query-value",
     .method = "POST",
     .path = "/",
     .query = "Param1=value1",
     .headers = {{"host", "example.amazonaws.com"}, {"x-amz-date", "20150830T123600Z"}},
     .payload_hash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
     .authz = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/servi"
              "ce/aws4_request, SignedHeaders=host;x-amz-date, Signature=280384"
              "55d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11",
     .creq = "POST\n"
             "/\n"
             "Param1=value1\n"
             "host:example.amazonaws.com\n"
             "x-amz-date:20150830T123600Z\n"
             "\n"
             "host;x-amz-date\n"
             "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
     .sts = "AWS4-HMAC-SHA256\n"
            "20150830T123600Z\n"
            "20150830/us-east-1/service/aws4_request\n"
            "9d659678c1756bb3113e2ce898845a0a79dbbc57b740555917687f1b3340fbbd",
     .sig = "28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11"},
    {.name = "post-vanilla-query",
     .method = "POST",
     .path = "/",
     .query = "Param1=value1",
     .headers = {{"host", "example.amazonaws.com"}, {"x-amz-date", "20150830T123600Z"}},
     .payload_hash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
     .authz = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/servi"
              "ce/aws4_request, SignedHeaders=host;x-amz-date, Signature=280384"
              "55d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11",
     .creq = "POST\n"
             "/\n"
             "Param1=value1\n"
             "host:example.amazonaws.com\n"
             "x-amz-date:20150830T123600Z\n"
             "\n"
             "host;x-amz-date\n"
             "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
     .sts = "AWS4-HMAC-SHA256\n"
            "20150830T123600Z\n"
            "20150830/us-east-1/service/aws4_request\n"
            "9d659678c1756bb3113e2ce898845a0a79dbbc57b740555917687f1b3340fbbd",
     .sig = "28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11"},
    {.name = "post-x-www-form-urlencoded",
     .method = "POST",
     .path = "/",
     .query = NULL,
     .headers = {{"content-type", "application/x-www-form-urlencoded"},
                 {"host", "example.amazonaws.com"},
                 {"x-amz-date", "20150830T123600Z"}},
     .payload_hash = "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e",
     .authz = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/servi"
              "ce/aws4_request, SignedHeaders=content-type;host;x-amz-date, Sig"
              "nature=ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0f"
              "e09473a",
     .creq = "POST\n"
             "/\n"
             "\n"
             "content-type:application/x-www-form-urlencoded\n"
             "host:example.amazonaws.com\n"
             "x-amz-date:20150830T123600Z\n"
             "\n"
             "content-type;host;x-amz-date\n"
             "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e",
     .sts = "AWS4-HMAC-SHA256\n"
            "20150830T123600Z\n"
            "20150830/us-east-1/service/aws4_request\n"
            "42a5e5bb34198acb3e84da4f085bb7927f2bc277ca766e6d19c73c2154021281",
     .sig = "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a"},
    {.name = "post-x-www-form-urlencoded-parameters",
     .method = "POST",
     .path = "/",
     .query = NULL,
     .headers = {{"content-type", "application/x-www-form-urlencoded; charset=utf8"},
                 {"host", "example.amazonaws.com"},
                 {"x-amz-date", "20150830T123600Z"}},
     .payload_hash = "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e",
     .authz = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/servi"
              "ce/aws4_request, SignedHeaders=content-type;host;x-amz-date, Sig"
              "nature=1a72ec8f64bd914b0e42e42607c7fbce7fb2c7465f63e3092b3b0d39f"
              "a77a6fe",
     .creq = "POST\n"
             "/\n"
             "\n"
             "content-type:application/x-www-form-urlencoded; charset=utf8\n"
             "host:example.amazonaws.com\n"
             "x-amz-date:20150830T123600Z\n"
             "\n"
             "content-type;host;x-amz-date\n"
             "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e",
     .sts = "AWS4-HMAC-SHA256\n"
            "20150830T123600Z\n"
            "20150830/us-east-1/service/aws4_request\n"
            "2e1cf7ed91881a30569e46552437e4156c823447bf1781b921b5d486c568dd1c",
     .sig = "1a72ec8f64bd914b0e42e42607c7fbce7fb2c7465f63e3092b3b0d39fa77a6fe"},

};

static const struct vector boto[] = {
    {.name = "ecr-describe-repositories",
     .method = "POST",
     .path = "/",
     .query = NULL,
     .headers = {{"x-amz-target", "AmazonEC2ContainerRegistry_V20150921.DescribeRepositories"},
                 {"content-type", "application/x-amz-json-1.1"},
                 {"x-amz-date", "20240301T102030Z"},
                 {"content-length", "29"},
                 {"host", "localhost:5000"}},
     /* sha256 of {"repositoryNames": ["demo"]} */
     .payload_hash = "8f40eaf8c6fc726cc97ca02a53aebf9c2576ee9d2683d48af160d01352af3960",
     .authz = "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20240301/eu-west-1/ecr/"
              "aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, "
              "Signature=5fb4610f5bd43539aab3baec7304a61c707148c5f8d81e2af9da9c4f11fc0d6d",
     .creq = "POST\n"
             "/\n"
             "\n"
             "content-type:application/x-amz-json-1.1\n"
             "host:localhost:5000\n"
             "x-amz-date:20240301T102030Z\n"
             "x-amz-target:AmazonEC2ContainerRegistry_V20150921.DescribeRepositories\n"
             "\n"
             "content-type;host;x-amz-date;x-amz-target\n"
             "8f40eaf8c6fc726cc97ca02a53aebf9c2576ee9d2683d48af160d01352af3960",
     .sts = "AWS4-HMAC-SHA256\n"
            "20240301T102030Z\n"
            "20240301/eu-west-1/ecr/aws4_request\n"
            "7137fb2f01fce1880d7e9b3261dfeac24881e13c0e8896dde4fc2a09cb37d61f",
     .sig = "5fb4610f5bd43539aab3baec7304a61c707148c5f8d81e2af9da9c4f11fc0d6d"},
    /* Path normalised then encoded a second time; query sent with '+' for space. */
    {.name = "ecr-path-double-encoding",
     .method = "GET",
     .path = "/v2/team%20a/app%2Fx/./tags/../list",
     .query = "n=10&last=a+b%2Bc&Z=%C3%A9&a=",
     .headers = {{"x-amz-meta-note", "  two   spaces  "},
                 {"x-amz-date", "20240301T102030Z"},
                 {"host", "127.0.0.1:5000"}},
     .payload_hash = EMPTY_HASH,
     .authz = "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20240301/us-west-2/ecr/"
              "aws4_request, SignedHeaders=host;x-amz-date;x-amz-meta-note, "
              "Signature=ffced784f3e008daed49ce4beed18b9ff43cae5f678372a405e39b51e3cf8441",
     .creq = "GET\n"
             "/v2/team%2520a/app%252Fx/list\n"
             "Z=%C3%A9&a=&last=a%20b%2Bc&n=10\n"
             "host:127.0.0.1:5000\n"
             "x-amz-date:20240301T102030Z\n"
             "x-amz-meta-note:two spaces\n"
             "\n"
             "host;x-amz-date;x-amz-meta-note\n" EMPTY_HASH,
     .sts = "AWS4-HMAC-SHA256\n"
            "20240301T102030Z\n"
            "20240301/us-west-2/ecr/aws4_request\n"
            "51d1c69af148c9f6c252bf5f39a3c5866a8704b33fb4717c7a7686a51068a0d8",
     .sig = "ffced784f3e008daed49ce4beed18b9ff43cae5f678372a405e39b51e3cf8441"},
};

/* ---- fake request ---- */

struct fake {
	const char *h[MAX_HDRS + 2][2];
};

static const char *fake_header(void *ctx, const char *lower_name)
{
	struct fake *f = ctx;
	for (size_t i = 0; i < MAX_HDRS + 2 && f->h[i][0]; i++)
		if (strcmp(f->h[i][0], lower_name) == 0)
			return f->h[i][1];
	return NULL;
}

static void fake_from_vector(struct fake *f, const struct vector *v)
{
	memset(f, 0, sizeof(*f));
	for (size_t i = 0; i < MAX_HDRS && v->headers[i][0]; i++) {
		f->h[i][0] = v->headers[i][0];
		f->h[i][1] = v->headers[i][1];
	}
}

/* Replaces (or adds) header name in f; value NULL removes it. */
static void fake_set(struct fake *f, const char *name, const char *value)
{
	size_t i = 0;
	for (; i < MAX_HDRS + 2 && f->h[i][0]; i++)
		if (strcmp(f->h[i][0], name) == 0)
			break;
	if (value == NULL) {
		for (; i + 1 < MAX_HDRS + 2; i++) {
			f->h[i][0] = f->h[i + 1][0];
			f->h[i][1] = f->h[i + 1][1];
		}
		f->h[MAX_HDRS + 1][0] = f->h[MAX_HDRS + 1][1] = NULL;
		return;
	}
	assert_true(i < MAX_HDRS + 2);
	f->h[i][0] = name;
	f->h[i][1] = value;
}

static struct sigv4_request request_of(const struct vector *v, struct fake *f)
{
	fake_from_vector(f, v);
	struct sigv4_request r = {
	    .method = v->method,
	    .path = v->path,
	    .query = v->query,
	    .header = fake_header,
	    .header_ctx = f,
	    .payload_hash = v->payload_hash,
	};
	return r;
}

/* ---- vectors ---- */

static void check_vector(const struct vector *v, const char *secret, const char *date,
                         int64_t now_ms)
{
	struct berr err;
	err_clear(&err);
	struct sigv4_auth auth;
	struct fake f;
	struct sigv4_request r = request_of(v, &f);
	print_message("  vector %s\n", v->name);
	assert_int_equal(sigv4_parse_authorization(v->authz, &auth, &err), BERR_OK);
	assert_string_equal(auth.signature, v->sig);
	assert_int_equal(strncmp(auth.date, date, 8), 0);

	struct buf b;
	buf_init(&b, 0);
	assert_int_equal(sigv4_canonical_request(&r, &auth, &b, &err), BERR_OK);
	assert_string_equal(b.p, v->creq);
	char *creq = buf_steal(&b, NULL);
	assert_int_equal(sigv4_string_to_sign(date, &auth, creq, &b, &err), BERR_OK);
	assert_string_equal(b.p, v->sts);
	char sig[65];
	sigv4_signature_compute(secret, &auth, b.p, sig);
	assert_string_equal(sig, v->sig);
	free(creq);
	buf_free(&b);

	assert_int_equal(sigv4_verify(&r, &auth, secret, now_ms, &err), BERR_OK);
	/* Any other secret must fail with AWS's mismatch message. */
	assert_int_equal(sigv4_verify(&r, &auth, "not-the-secret", now_ms, &err),
	                 BERR_AUTH_SIGNATURE);
	assert_non_null(strstr(err.msg, "does not match the signature you provided"));
}

static void test_suite_vectors(void **state)
{
	(void)state;
	assert_true(ARRAY_LEN(suite) >= 6);
	for (size_t i = 0; i < ARRAY_LEN(suite); i++) {
		struct sigv4_auth auth;
		assert_int_equal(sigv4_parse_authorization(suite[i].authz, &auth, NULL), BERR_OK);
		assert_string_equal(auth.akid, "AKIDEXAMPLE");
		assert_string_equal(auth.region, "us-east-1");
		assert_string_equal(auth.service, "service");
		check_vector(&suite[i], SUITE_SECRET, SUITE_DATE, SUITE_NOW_MS);
	}
}

static void test_botocore_vectors(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(boto); i++) {
		struct sigv4_auth auth;
		assert_int_equal(sigv4_parse_authorization(boto[i].authz, &auth, NULL), BERR_OK);
		assert_string_equal(auth.akid, "AKIAIOSFODNN7EXAMPLE");
		assert_string_equal(auth.service, "ecr");
		check_vector(&boto[i], BOTO_SECRET, BOTO_DATE, BOTO_NOW_MS);
	}
}

/* ---- verify: reject paths ---- */

/* The ECR DescribeRepositories request, parsed, with its fake headers. */
struct ecr_case {
	struct fake f;
	struct sigv4_request r;
	struct sigv4_auth auth;
};

static void ecr_case_init(struct ecr_case *c)
{
	c->r = request_of(&boto[0], &c->f);
	assert_int_equal(sigv4_parse_authorization(boto[0].authz, &c->auth, NULL), BERR_OK);
}

static enum berr_code ecr_verify(struct ecr_case *c, const char *secret, int64_t now_ms,
                                 struct berr *err)
{
	err_clear(err);
	return sigv4_verify(&c->r, &c->auth, secret, now_ms, err);
}

static const char mismatch[] =
    "The request signature we calculated does not match the signature you provided. Check your "
    "AWS Secret Access Key and signing method. Consult the service documentation for details.";

static void test_verify_wrong_secret(void **state)
{
	(void)state;
	struct ecr_case c;
	struct berr err;
	ecr_case_init(&c);
	assert_int_equal(ecr_verify(&c, BOTO_SECRET, BOTO_NOW_MS, &err), BERR_OK);
	assert_int_equal(ecr_verify(&c, SUITE_SECRET, BOTO_NOW_MS, &err), BERR_AUTH_SIGNATURE);
	assert_string_equal(err.msg, mismatch);
	assert_int_equal(ecr_verify(&c, "", BOTO_NOW_MS, &err), BERR_AUTH_SIGNATURE);
	assert_string_equal(err.msg, mismatch);
}

static void test_verify_tampered(void **state)
{
	(void)state;
	struct ecr_case c;
	struct berr err;

	ecr_case_init(&c);
	c.r.payload_hash = EMPTY_HASH; /* body changed */
	assert_int_equal(ecr_verify(&c, BOTO_SECRET, BOTO_NOW_MS, &err), BERR_AUTH_SIGNATURE);
	assert_string_equal(err.msg, mismatch);

	ecr_case_init(&c);
	fake_set(&c.f, "x-amz-target", "AmazonEC2ContainerRegistry_V20150921.DeleteRepository");
	assert_int_equal(ecr_verify(&c, BOTO_SECRET, BOTO_NOW_MS, &err), BERR_AUTH_SIGNATURE);

	ecr_case_init(&c);
	fake_set(&c.f, "host", "evil.example:5000");
	assert_int_equal(ecr_verify(&c, BOTO_SECRET, BOTO_NOW_MS, &err), BERR_AUTH_SIGNATURE);

	ecr_case_init(&c);
	fake_set(&c.f, "content-type", NULL); /* signed header dropped on the way */
	assert_int_equal(ecr_verify(&c, BOTO_SECRET, BOTO_NOW_MS, &err), BERR_AUTH_SIGNATURE);

	ecr_case_init(&c);
	c.r.method = "PUT";
	assert_int_equal(ecr_verify(&c, BOTO_SECRET, BOTO_NOW_MS, &err), BERR_AUTH_SIGNATURE);

	ecr_case_init(&c);
	c.r.path = "/x";
	assert_int_equal(ecr_verify(&c, BOTO_SECRET, BOTO_NOW_MS, &err), BERR_AUTH_SIGNATURE);

	ecr_case_init(&c);
	c.r.query = "a=b";
	assert_int_equal(ecr_verify(&c, BOTO_SECRET, BOTO_NOW_MS, &err), BERR_AUTH_SIGNATURE);

	/* Every single-digit change of the signature is rejected. */
	ecr_case_init(&c);
	for (size_t i = 0; i < 64; i++) {
		char o = c.auth.signature[i];
		c.auth.signature[i] = o == '0' ? '1' : '0';
		assert_int_equal(ecr_verify(&c, BOTO_SECRET, BOTO_NOW_MS, &err),
		                 BERR_AUTH_SIGNATURE);
		c.auth.signature[i] = o;
	}
	assert_int_equal(ecr_verify(&c, BOTO_SECRET, BOTO_NOW_MS, &err), BERR_OK);

	/* Unsigned headers may change freely. */
	fake_set(&c.f, "content-length", "30");
	fake_set(&c.f, "user-agent", "aws-cli/2");
	assert_int_equal(ecr_verify(&c, BOTO_SECRET, BOTO_NOW_MS, &err), BERR_OK);
}

static void test_verify_skew(void **state)
{
	(void)state;
	struct ecr_case c;
	struct berr err;
	const int64_t m15 = 15 * 60 * 1000;
	ecr_case_init(&c);
	/* The window is inclusive: exactly 15 minutes either way is accepted. */
	assert_int_equal(ecr_verify(&c, BOTO_SECRET, BOTO_NOW_MS + m15, &err), BERR_OK);
	assert_int_equal(ecr_verify(&c, BOTO_SECRET, BOTO_NOW_MS + m15 + 999, &err), BERR_OK);
	assert_int_equal(ecr_verify(&c, BOTO_SECRET, BOTO_NOW_MS - m15, &err), BERR_OK);

	assert_int_equal(ecr_verify(&c, BOTO_SECRET, BOTO_NOW_MS + m15 + 1000, &err),
	                 BERR_AUTH_SKEW);
	assert_string_equal(err.msg, "Signature expired: 20240301T102030Z is now earlier than "
	                             "20240301T102031Z (20240301T103531Z - 15 min.)");
	assert_int_equal(ecr_verify(&c, BOTO_SECRET, BOTO_NOW_MS + 86400000LL * 365, &err),
	                 BERR_AUTH_SKEW);
	assert_string_equal(err.msg, "Signature expired: 20240301T102030Z is now earlier than "
	                             "20250301T100530Z (20250301T102030Z - 15 min.)");

	assert_int_equal(ecr_verify(&c, BOTO_SECRET, BOTO_NOW_MS - m15 - 1000, &err),
	                 BERR_AUTH_SKEW);
	assert_string_equal(err.msg, "Signature not yet current: 20240301T102030Z is still later "
	                             "than 20240301T102029Z (20240301T100529Z + 15 min.)");
	/* Skew is checked before the signature: a wrong secret still reports the skew. */
	assert_int_equal(ecr_verify(&c, "wrong", BOTO_NOW_MS - m15 - 1000, &err), BERR_AUTH_SKEW);
}

static void test_verify_date_headers(void **state)
{
	(void)state;
	struct ecr_case c;
	struct berr err;

	ecr_case_init(&c);
	fake_set(&c.f, "x-amz-date", NULL);
	assert_int_equal(ecr_verify(&c, BOTO_SECRET, BOTO_NOW_MS, &err), BERR_AUTH_SIGNATURE);
	assert_string_equal(err.msg, "Authorization header requires existence of either a "
	                             "'X-Amz-Date' or a 'Date' header.");

	static const char *const bad[] = {
	    "",
	    "20240301",
	    "20240301T102030",
	    "20240301T102030z",
	    "2024-03-01T10:20:30Z",
	    "20241301T102030Z",
	    "20240230T102030Z",
	    "20230229T102030Z",
	    "20240301T242030Z",
	    "20240301T106030Z",
	    "20240301T102060Z",
	    "20240301X102030Z",
	    "2024030lT102030Z",
	    "20240301T102030Z0",
	};
	for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
		ecr_case_init(&c);
		fake_set(&c.f, "x-amz-date", bad[i]);
		assert_int_equal(ecr_verify(&c, BOTO_SECRET, BOTO_NOW_MS, &err),
		                 BERR_AUTH_SIGNATURE);
		assert_non_null(strstr(err.msg, "X-Amz-Date must be in the ISO8601 Long Format"));
	}

	/* Surrounding whitespace is tolerated; the value itself is what was signed. */
	ecr_case_init(&c);
	fake_set(&c.f, "x-amz-date", " 20240301T102030Z ");
	assert_int_equal(ecr_verify(&c, BOTO_SECRET, BOTO_NOW_MS, &err), BERR_OK);

	/* A leap day parses (then fails on the signature, not on the date). */
	ecr_case_init(&c);
	fake_set(&c.f, "x-amz-date", "20240229T102030Z");
	assert_int_equal(ecr_verify(&c, BOTO_SECRET, BOTO_NOW_MS - 86400000LL, &err),
	                 BERR_AUTH_SIGNATURE);
	assert_non_null(strstr(err.msg, "Date in Credential scope does not match"));

	/* Credential scope date must equal the request date. */
	ecr_case_init(&c);
	fake_set(&c.f, "x-amz-date", "20240302T001000Z");
	assert_int_equal(ecr_verify(&c, BOTO_SECRET, 1709338200000LL, &err), BERR_AUTH_SIGNATURE);
	assert_string_equal(err.msg,
	                    "Date in Credential scope does not match YYYYMMDD from ISO-8601 "
	                    "version of date from HTTP: '20240301' != '20240302', from "
	                    "'20240302T001000Z'.");
}

/* Signs the get-vanilla request with a Date header instead of X-Amz-Date, using the string to
 * sign AWS specifies for that case (the Date converted to the basic format). */
static void test_verify_http_date(void **state)
{
	(void)state;
	struct fake f = {
	    {{"host", "example.amazonaws.com"}, {"date", "Sun, 30 Aug 2015 12:36:00 GMT"}}};
	struct sigv4_request r = {"GET", "/", NULL, fake_header, &f, EMPTY_HASH};
	struct sigv4_auth auth;
	struct berr err;
	struct buf creq, sts;
	buf_init(&creq, 0);
	buf_init(&sts, 0);
	assert_int_equal(sigv4_parse_authorization(
	                     "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/"
	                     "aws4_request, SignedHeaders=date;host, Signature=" EMPTY_HASH,
	                     &auth, &err),
	                 BERR_OK);
	assert_int_equal(sigv4_canonical_request(&r, &auth, &creq, &err), BERR_OK);
	assert_string_equal(creq.p, "GET\n/\n\ndate:Sun, 30 Aug 2015 12:36:00 GMT\n"
	                            "host:example.amazonaws.com\n\ndate;host\n" EMPTY_HASH);
	assert_int_equal(sigv4_string_to_sign(SUITE_DATE, &auth, creq.p, &sts, &err), BERR_OK);
	sigv4_signature_compute(SUITE_SECRET, &auth, sts.p, auth.signature);
	assert_int_equal(sigv4_verify(&r, &auth, SUITE_SECRET, SUITE_NOW_MS, &err), BERR_OK);
	assert_int_equal(sigv4_verify(&r, &auth, SUITE_SECRET, SUITE_NOW_MS + 901000, &err),
	                 BERR_AUTH_SKEW);
	assert_string_equal(err.msg, "Signature expired: 20150830T123600Z is now earlier than "
	                             "20150830T123601Z (20150830T125101Z - 15 min.)");

	/* X-Amz-Date wins over Date when both are present. */
	f.h[2][0] = "x-amz-date";
	f.h[2][1] = "20150830T123700Z";
	assert_int_equal(sigv4_verify(&r, &auth, SUITE_SECRET, SUITE_NOW_MS, &err),
	                 BERR_AUTH_SIGNATURE);
	assert_string_equal(err.msg, mismatch);
	f.h[2][0] = f.h[2][1] = NULL;

	static const char *const bad[] = {
	    "Sun, 30 Aug 2015 12:36:00 UTC", "Sun, 30 Aug 2015 12:36:00",
	    "30 Aug 2015 12:36:00 GMT",      "Sun, 30 Foo 2015 12:36:00 GMT",
	    "Sun, 31 Sep 2015 12:36:00 GMT", "Sunday, 30-Aug-15 12:36:00 GMT",
	    "Sun, 30 Aug 2015 25:36:00 GMT",
	};
	for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
		f.h[1][1] = bad[i];
		assert_int_equal(sigv4_verify(&r, &auth, SUITE_SECRET, SUITE_NOW_MS, &err),
		                 BERR_AUTH_SIGNATURE);
		assert_non_null(strstr(err.msg, "RFC 1123"));
	}
	buf_free(&creq);
	buf_free(&sts);
}

static void test_verify_host_must_be_signed(void **state)
{
	(void)state;
	struct fake f = {{{"host", "example.amazonaws.com"}, {"x-amz-date", SUITE_DATE}}};
	struct sigv4_request r = {"GET", "/", NULL, fake_header, &f, EMPTY_HASH};
	struct sigv4_auth auth;
	struct berr err;
	struct buf creq, sts;
	buf_init(&creq, 0);
	buf_init(&sts, 0);
	/* A correctly computed signature over x-amz-date only is still refused. */
	assert_int_equal(sigv4_parse_authorization(
	                     "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/"
	                     "aws4_request, SignedHeaders=x-amz-date, Signature=" EMPTY_HASH,
	                     &auth, &err),
	                 BERR_OK);
	assert_int_equal(sigv4_canonical_request(&r, &auth, &creq, &err), BERR_OK);
	assert_int_equal(sigv4_string_to_sign(SUITE_DATE, &auth, creq.p, &sts, &err), BERR_OK);
	sigv4_signature_compute(SUITE_SECRET, &auth, sts.p, auth.signature);
	assert_int_equal(sigv4_verify(&r, &auth, SUITE_SECRET, SUITE_NOW_MS, &err),
	                 BERR_AUTH_SIGNATURE);
	assert_string_equal(err.msg, "'Host' or ':authority' must be a 'SignedHeader' in the AWS "
	                             "Authorization.");
	/* "hostx" or "x-host" do not count as host. */
	memcpy(auth.signed_headers, "hostx;x-host", 13);
	assert_int_equal(sigv4_verify(&r, &auth, SUITE_SECRET, SUITE_NOW_MS, &err),
	                 BERR_AUTH_SIGNATURE);
	assert_non_null(strstr(err.msg, "'Host'"));
	buf_free(&creq);
	buf_free(&sts);
}

/* ---- parse ---- */

#define CRED "Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request"
#define SH "SignedHeaders=host;x-amz-date"
#define SIG "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"

static void test_parse_ok_variants(void **state)
{
	(void)state;
	static const char *const ok[] = {
	    "AWS4-HMAC-SHA256 " CRED ", " SH ", " SIG,
	    "AWS4-HMAC-SHA256 " CRED "," SH "," SIG,
	    "  AWS4-HMAC-SHA256   " SIG " ,  " SH " , " CRED "  ",
	    "AWS4-HMAC-SHA256 " CRED ", " SH ", Foo=bar, " SIG,
	    "AWS4-HMAC-SHA256\t" CRED ", SignedHeaders=Host;X-Amz-Date, " SIG,
	    "AWS4-HMAC-SHA256 " CRED ", " SH ", "
	    "Signature=5FA00FA31553B73EBF1942676E86291E8372FF2A2260956D9B8AAE1D763FBF31,",
	};
	for (size_t i = 0; i < ARRAY_LEN(ok); i++) {
		struct sigv4_auth a;
		struct berr err;
		err_clear(&err);
		print_message("  ok[%zu]\n", i);
		assert_int_equal(sigv4_parse_authorization(ok[i], &a, &err), BERR_OK);
		assert_string_equal(a.akid, "AKIDEXAMPLE");
		assert_string_equal(a.date, "20150830");
		assert_string_equal(a.region, "us-east-1");
		assert_string_equal(a.service, "service");
		assert_string_equal(a.signed_headers, "host;x-amz-date");
		assert_string_equal(
		    a.signature,
		    "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
	}
}

struct bad_case {
	const char *value;
	enum berr_code code;
	const char *msg; /* substring expected in err.msg */
};

static void test_parse_malformed(void **state)
{
	(void)state;
	char long_akid[400], long_region[400], long_value[800];
	snprintf(long_akid, sizeof(long_akid),
	         "AWS4-HMAC-SHA256 Credential=%0129d/20150830/"
	         "us-east-1/ecr/aws4_request, " SH ", " SIG,
	         0);
	snprintf(long_region, sizeof(long_region),
	         "AWS4-HMAC-SHA256 Credential=AKID/20150830/"
	         "%064d/ecr/aws4_request, " SH ", " SIG,
	         0);
	snprintf(long_value, sizeof(long_value), "AWS4-HMAC-SHA256 " CRED ", " SH ", Foo=%0500d",
	         0);
	const struct bad_case bad[] = {
	    {NULL, BERR_AUTH_MISSING, "Missing Authentication Token"},
	    {"", BERR_AUTH_MISSING, "Missing Authentication Token"},
	    {"Basic QVdTOnBhc3N3b3Jk", BERR_AUTH_MISSING, ""},
	    {"Bearer abc", BERR_AUTH_MISSING, ""},
	    {"AWS AKIDEXAMPLE:frJIUN8DYpKDtOLCwo//yllqDzg=", BERR_AUTH_MISSING, ""},
	    {"aws4-hmac-sha256 " CRED ", " SH ", " SIG, BERR_AUTH_MISSING, ""},
	    {"AWS4-HMAC-SHA256X " CRED, BERR_AUTH_SIGNATURE, "Unsupported AWS 'algorithm'"},
	    {"AWS4-ECDSA-P256-SHA256 " CRED ", " SH ", " SIG, BERR_AUTH_SIGNATURE,
	     "Unsupported AWS 'algorithm': 'AWS4-ECDSA-P256-SHA256'."},
	    {"AWS4-HMAC-SHA256", BERR_AUTH_SIGNATURE,
	     "Authorization header requires 'Credential' parameter. Authorization header "
	     "requires "
	     "'SignedHeaders' parameter. Authorization header requires 'Signature' parameter. "
	     "Authorization=AWS4-HMAC-SHA256"},
	    {"AWS4-HMAC-SHA256 " CRED ", " SH, BERR_AUTH_SIGNATURE,
	     "Authorization header requires 'Signature' parameter. "
	     "Authorization=AWS4-HMAC-SHA256 "
	     "Credential=AKIDEXAMPLE/"},
	    {"AWS4-HMAC-SHA256 " SH ", " SIG, BERR_AUTH_SIGNATURE,
	     "Authorization header requires 'Credential' parameter."},
	    {"AWS4-HMAC-SHA256 " CRED ", " SIG, BERR_AUTH_SIGNATURE,
	     "requires 'SignedHeaders' parameter."},
	    {"AWS4-HMAC-SHA256 Credential, " SH ", " SIG, BERR_AUTH_SIGNATURE,
	     "'Credential' not a valid key=value pair (missing equal-sign) in Authorization "
	     "header"},
	    {"AWS4-HMAC-SHA256 " CRED ", " CRED ", " SH ", " SIG, BERR_AUTH_SIGNATURE,
	     "duplicate 'Credential'"},
	    {"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service, " SH ", " SIG,
	     BERR_AUTH_SIGNATURE, "the Credential is mal-formed"},
	    {"AWS4-HMAC-SHA256 "
	     "Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request/x, " SH ", " SIG,
	     BERR_AUTH_SIGNATURE, "the Credential is mal-formed"},
	    {"AWS4-HMAC-SHA256 Credential=, " SH ", " SIG, BERR_AUTH_SIGNATURE,
	     "the Credential is mal-formed"},
	    {"AWS4-HMAC-SHA256 "
	     "Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws5_request, " SH ", " SIG,
	     BERR_AUTH_SIGNATURE,
	     "Credential should be scoped with a valid terminator: 'aws4_request', not "
	     "'aws5_request'."},
	    {"AWS4-HMAC-SHA256 "
	     "Credential=AKIDEXAMPLE/2015083/us-east-1/service/aws4_request, " SH ", " SIG,
	     BERR_AUTH_SIGNATURE,
	     "Invalid credential date \"2015083\". Date is not the required format: yyyyMMdd."},
	    {"AWS4-HMAC-SHA256 "
	     "Credential=AKIDEXAMPLE/2015-8-30/us-east-1/service/aws4_request, " SH ", " SIG,
	     BERR_AUTH_SIGNATURE, "Invalid credential date"},
	    {"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830//service/aws4_request, " SH ", " SIG,
	     BERR_AUTH_SIGNATURE, "Credential should be scoped to a valid region."},
	    {"AWS4-HMAC-SHA256 "
	     "Credential=AKIDEXAMPLE/20150830/us_east/service/aws4_request, " SH ", " SIG,
	     BERR_AUTH_SIGNATURE, "valid region"},
	    {"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/s v/aws4_request, " SH
	     ", " SIG,
	     BERR_AUTH_SIGNATURE, "Credential should be scoped to a valid service."},
	    {"AWS4-HMAC-SHA256 Credential=AK ID/20150830/us-east-1/ecr/aws4_request, " SH ", " SIG,
	     BERR_AUTH_SIGNATURE, "access key id"},
	    {long_akid, BERR_AUTH_SIGNATURE, "access key id"},
	    {long_region, BERR_AUTH_SIGNATURE, "valid region"},
	    {"AWS4-HMAC-SHA256 " CRED ", SignedHeaders=, " SIG, BERR_AUTH_SIGNATURE,
	     "SignedHeaders must be"},
	    {"AWS4-HMAC-SHA256 " CRED ", SignedHeaders=host;;x-amz-date, " SIG, BERR_AUTH_SIGNATURE,
	     "SignedHeaders must be"},
	    {"AWS4-HMAC-SHA256 " CRED ", SignedHeaders=;host, " SIG, BERR_AUTH_SIGNATURE,
	     "SignedHeaders must be"},
	    {"AWS4-HMAC-SHA256 " CRED ", SignedHeaders=host;, " SIG, BERR_AUTH_SIGNATURE,
	     "SignedHeaders must be"},
	    {"AWS4-HMAC-SHA256 " CRED ", SignedHeaders=ho st, " SIG, BERR_AUTH_SIGNATURE,
	     "SignedHeaders must be"},
	    {"AWS4-HMAC-SHA256 " CRED ", SignedHeaders=host:x, " SIG, BERR_AUTH_SIGNATURE,
	     "SignedHeaders must be"},
	    {"AWS4-HMAC-SHA256 " CRED ", " SH ", Signature=5fa00fa3", BERR_AUTH_SIGNATURE,
	     "Signature must be 64 hexadecimal characters"},
	    {"AWS4-HMAC-SHA256 " CRED ", " SH
	     ", Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf3g",
	     BERR_AUTH_SIGNATURE, "Signature must be 64 hexadecimal characters"},
	    {"AWS4-HMAC-SHA256 " CRED ", " SH ", " SIG "0", BERR_AUTH_SIGNATURE,
	     "Signature must be 64 hexadecimal characters"},
	    {"AWS4-HMAC-SHA256 " CRED ", " SH ", Signature=", BERR_AUTH_SIGNATURE,
	     "Signature must be 64"},
	    /* The echo of the header is sanitised and cut short. */
	    {"AWS4-HMAC-SHA256 \x01\"'\\=x", BERR_AUTH_SIGNATURE,
	     "parameter. Authorization=AWS4-HMAC-SHA256 ?\?\?\?=x"},
	    {long_value, BERR_AUTH_SIGNATURE,
	     "requires 'Signature' parameter. "
	     "Authorization=AWS4-HMAC-SHA256 "
	     "Credential=AKIDEXAMPLE/20150830/us-east-1/servi..."},
	};
	for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
		struct sigv4_auth a;
		struct berr err;
		err_clear(&err);
		print_message("  bad[%zu]\n", i);
		assert_int_equal(sigv4_parse_authorization(bad[i].value, &a, &err), bad[i].code);
		assert_int_equal(err.code, bad[i].code);
		if (!strstr(err.msg, bad[i].msg))
			fail_msg("message \"%s\" lacks \"%s\"", err.msg, bad[i].msg);
		assert_true(strlen(err.msg) < 400);
		/* On failure nothing is left half-filled. */
		assert_string_equal(a.akid, "");
		assert_string_equal(a.signature, "");
	}
}

static void test_parse_echo_sanitised(void **state)
{
	(void)state;
	struct sigv4_auth a;
	struct berr err;
	err_clear(&err);
	assert_int_equal(sigv4_parse_authorization("AWS4-HMAC-SHA256 \"'\x7f\x01", &a, &err),
	                 BERR_AUTH_SIGNATURE);
	assert_non_null(strstr(err.msg, "in Authorization header: 'AWS4-HMAC-SHA256 ?\?\?\?'."));
}

/* ---- canonical pieces not covered by the vectors ---- */

static void check_creq(const char *path, const char *query, const char *want_uri,
                       const char *want_query)
{
	struct fake f = {{{"host", "h"}}};
	struct sigv4_request r = {"GET", path, query, fake_header, &f, EMPTY_HASH};
	struct sigv4_auth auth;
	struct berr err;
	struct buf b;
	char want[512];
	assert_int_equal(sigv4_parse_authorization(
	                     "AWS4-HMAC-SHA256 " CRED ", SignedHeaders=host, " SIG, &auth, &err),
	                 BERR_OK);
	buf_init(&b, 0);
	assert_int_equal(sigv4_canonical_request(&r, &auth, &b, &err), BERR_OK);
	snprintf(want, sizeof(want), "GET\n%s\n%s\nhost:h\n\nhost\n%s", want_uri, want_query,
	         EMPTY_HASH);
	assert_string_equal(b.p, want);
	buf_free(&b);
}

static void test_canonical_uri_and_query(void **state)
{
	(void)state;
	check_creq(NULL, NULL, "/", "");
	check_creq("", "", "/", "");
	check_creq("/", "", "/", "");
	check_creq("/a/b/../../..", NULL, "/", "");
	check_creq("/../a/", NULL, "/a/", "");
	check_creq("/a/./b/.", NULL, "/a/b", "");
	check_creq("/a%2e%2E/b", NULL, "/a%252e%252E/b", "");
	check_creq("/v2/ns/repo/manifests/sha256:ab", NULL, "/v2/ns/repo/manifests/sha256%3Aab",
	           "");
	check_creq("/\xff", NULL, "/%FF", "");
	check_creq("/", "b&a", "/", "a=&b=");
	check_creq("/", "a=1&&b", "/", "a=1&b=");
	check_creq("/", "&", "/", "");
	check_creq("/", "=x", "/", "=x");
	check_creq("/", "a==b", "/", "a=%3Db");
	check_creq("/", "k=%zz&k=%4", "/", "k=%254&k=%25zz");
	check_creq("/", "k=%41%7e%2f", "/", "k=A~%2F");
	check_creq("/", "sp=a+b&plus=%2B", "/", "plus=%2B&sp=a%20b");
	check_creq("/", "Param=a&Param-3=b&Param=", "/", "Param=&Param=a&Param-3=b");
	check_creq("/", "b=2&a=1&a=0", "/", "a=0&a=1&b=2");
}

static void test_canonical_headers(void **state)
{
	(void)state;
	struct fake f = {
	    {{"host", "h"}, {"x-a", "\t  a \t b\r\n c  "}, {"x-b", ""}, {"x-c", "   "}}};
	struct sigv4_request r = {"POST", "/", NULL, fake_header, &f, EMPTY_HASH};
	struct sigv4_auth auth;
	struct berr err;
	struct buf b;
	assert_int_equal(
	    sigv4_parse_authorization("AWS4-HMAC-SHA256 " CRED
	                              ", SignedHeaders=host;x-a;x-b;x-c;x-missing, " SIG,
	                              &auth, &err),
	    BERR_OK);
	buf_init(&b, 0);
	assert_int_equal(sigv4_canonical_request(&r, &auth, &b, &err), BERR_OK);
	assert_string_equal(b.p, "POST\n/\n\nhost:h\nx-a:a b c\nx-b:\nx-c:\nx-missing:\n\n"
	                         "host;x-a;x-b;x-c;x-missing\n" EMPTY_HASH);
	/* A limited buffer reports BERR_TOO_LARGE, not a truncated text. */
	struct buf small;
	buf_init(&small, 16);
	assert_int_equal(sigv4_canonical_request(&r, &auth, &small, &err), BERR_TOO_LARGE);
	buf_free(&small);
	buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_suite_vectors),
	    cmocka_unit_test(test_botocore_vectors),
	    cmocka_unit_test(test_verify_wrong_secret),
	    cmocka_unit_test(test_verify_tampered),
	    cmocka_unit_test(test_verify_skew),
	    cmocka_unit_test(test_verify_date_headers),
	    cmocka_unit_test(test_verify_http_date),
	    cmocka_unit_test(test_verify_host_must_be_signed),
	    cmocka_unit_test(test_parse_ok_variants),
	    cmocka_unit_test(test_parse_malformed),
	    cmocka_unit_test(test_parse_echo_sanitised),
	    cmocka_unit_test(test_canonical_uri_and_query),
	    cmocka_unit_test(test_canonical_headers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
