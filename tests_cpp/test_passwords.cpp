// Argon2id PHC hashing, verification and the dual check.
#include <gtest/gtest.h>

#include "blocktrust/passwords.hpp"

namespace pw = blocktrust::passwords;

namespace {
// The reference implementation's documented vector (phc-winner-argon2 README):
// argon2id, t=2, m=64 MiB, p=1, password "password", salt "somesalt".
const std::string kReference =
    "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc";
const pw::Params kFast{1024, 1, 1, 32, 16};
}  // namespace

TEST(Password, VerifiesTheReferenceVector) {
  EXPECT_TRUE(pw::verify("password", kReference));
  EXPECT_FALSE(pw::verify("Password", kReference));
}

TEST(Password, HashesAreSaltedPhcStringsThatVerify) {
  const std::string a = pw::hash("hunter22", kFast);
  const std::string b = pw::hash("hunter22", kFast);
  EXPECT_EQ(a.rfind("$argon2id$v=19$m=1024,t=1,p=1$", 0), 0u) << a;
  EXPECT_NE(a, b);  // fresh salt each time
  EXPECT_TRUE(pw::verify("hunter22", a));
  EXPECT_FALSE(pw::verify("hunter23", a));
}

TEST(Password, NeedsRehashWhenParametersDiffer) {
  EXPECT_TRUE(pw::needs_rehash(kReference, pw::Params{}));
  EXPECT_FALSE(pw::needs_rehash(kReference, pw::Params{65536, 2, 1, 32, 16}));
}

TEST(Password, MalformedHashesAreInvalidHash) {
  for (const std::string bad :
       {"", "$2b$12$abcdefghijklmnopqrstuv", "$argon2id$v=19$m=1024,t=1,p=1",
        "$argon2id$v=19$m=x,t=1,p=1$c2FsdHNhbHQ$aGFzaA", "$argon2id$v=19$t=1,p=1$c2FsdHNhbHQ$aGFz",
        "$argon2id$v=19$m=1024,t=1,p=1$!!!$???"}) {
    EXPECT_THROW((void)pw::verify("x", bad), pw::InvalidPasswordHash) << bad;
  }
}

TEST(Password, BadParametersAndInputsAreTyped) {
  EXPECT_THROW((void)pw::hash("x", pw::Params{4, 1, 1, 32, 16}), blocktrust::ConfigError);
  EXPECT_THROW((void)pw::hash("x", pw::Params{1024, 0, 1, 32, 16}), blocktrust::ConfigError);
  EXPECT_THROW((void)pw::hash(std::string(pw::kMaxPasswordBytes + 1, 'a'), kFast),
               pw::PasswordError);
  EXPECT_THROW((void)pw::hash_dual("same", "same", kFast), pw::PasswordError);
}

TEST(Password, DualCheckAlwaysRunsBothVerifications) {
  auto [normal, duress] = pw::hash_dual("normal-pw", "duress-pw", kFast);
  struct Case {
    const char* password;
    pw::DualResult want;
  };
  for (const Case& c :
       {Case{"normal-pw", pw::DualResult::kNormal}, Case{"duress-pw", pw::DualResult::kDuress},
        Case{"wrong-pw", pw::DualResult::kRejected}}) {
    const auto before = pw::verify_count();
    EXPECT_EQ(pw::check_dual(c.password, normal, duress), c.want) << c.password;
    EXPECT_EQ(pw::verify_count() - before, 2u) << c.password;
  }
}
