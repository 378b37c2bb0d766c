//! Facts about AWS itself, in one place: ARNs and partitions, and the task sizes Fargate runs.
//! Validation, the desired state, the schema and the recommender all read them from here.

/// The parts of an ARN: `arn:<partition>:<service>:<region>:<account>:<resource>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arn<'a> {
    pub partition: &'a str,
    pub service: &'a str,
    pub region: &'a str,
    pub account: &'a str,
    pub resource: &'a str,
}

impl<'a> Arn<'a> {
    /// Splits an ARN; `None` when it is not one.
    #[must_use]
    pub fn parse(arn: &'a str) -> Option<Self> {
        let mut parts = arn.splitn(6, ':');
        if parts.next()? != "arn" {
            return None;
        }
        let (partition, service, region, account, resource) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        partition.starts_with("aws").then_some(Self { partition, service, region, account, resource })
    }
}

/// Where a deployment's resources live: partition, region and account, read off a real ARN (the
/// table's), so every ARN the operator builds is right in GovCloud and China too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub partition: String,
    pub region: String,
    pub account: String,
}

impl Scope {
    /// The scope of a regional resource's ARN; `None` when the ARN lacks a region or account.
    #[must_use]
    pub fn of_arn(arn: &str) -> Option<Self> {
        let arn = Arn::parse(arn).filter(|a| !a.region.is_empty() && !a.account.is_empty())?;
        Some(Self {
            partition: arn.partition.to_owned(),
            region: arn.region.to_owned(),
            account: arn.account.to_owned(),
        })
    }

    /// `arn:<partition>:<service>:<region>:<account>:<resource>` in this scope.
    #[must_use]
    pub fn arn(&self, service: &str, resource: &str) -> String {
        format!("arn:{}:{service}:{}:{}:{resource}", self.partition, self.region, self.account)
    }
}

/// The partition a region belongs to, for ARNs built before any resource exists (an image's ECR
/// repository, say).
#[must_use]
pub fn partition_of_region(region: &str) -> &'static str {
    if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else if region.starts_with("cn-") {
        "aws-cn"
    } else {
        "aws"
    }
}

/// An IPv4 CIDR block, e.g. `10.0.0.0/8`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: u32,
    prefix: u8,
}

impl Cidr {
    /// `None` unless `text` is `a.b.c.d/n` with its host bits zero, as EC2 requires.
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        let (address, prefix) = text.split_once('/')?;
        let address: std::net::Ipv4Addr = address.parse().ok()?;
        let prefix: u8 = prefix.parse().ok().filter(|p| *p <= 32)?;
        let network = u32::from(address);
        (network & !Self::mask(prefix) == 0).then_some(Self { network, prefix })
    }

    fn mask(prefix: u8) -> u32 {
        u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0)
    }

    /// Whether every address of `other` is in this block.
    #[must_use]
    pub fn contains(self, other: Self) -> bool {
        other.prefix >= self.prefix && other.network & Self::mask(self.prefix) == self.network
    }
}

/// The memory sizes Fargate allows with one CPU size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FargateMemory {
    /// Exactly these sizes, MiB.
    Listed(&'static [i32]),
    /// From `min` to `max` MiB in steps of `step`.
    Range { min: i32, max: i32, step: i32 },
}

/// Fargate's task sizes (Linux): each CPU size (units of 1/1024 vCPU) and the memory it allows,
/// as the ECS documentation's task-size table gives them.
pub const FARGATE_SIZES: [(i32, FargateMemory); 7] = [
    (256, FargateMemory::Listed(&[512, 1024, 2048])),
    (512, FargateMemory::Range { min: 1024, max: 4096, step: 1024 }),
    (1024, FargateMemory::Range { min: 2048, max: 8192, step: 1024 }),
    (2048, FargateMemory::Range { min: 4096, max: 16384, step: 1024 }),
    (4096, FargateMemory::Range { min: 8192, max: 30720, step: 1024 }),
    (8192, FargateMemory::Range { min: 16384, max: 61440, step: 4096 }),
    (16384, FargateMemory::Range { min: 32768, max: 122_880, step: 8192 }),
];

/// The Fargate CPU sizes, smallest first.
#[must_use]
pub fn fargate_cpus() -> Vec<i32> {
    FARGATE_SIZES.iter().map(|(cpu, _)| *cpu).collect()
}

/// The memory Fargate allows with `cpu`; `None` when Fargate has no such CPU size.
#[must_use]
pub fn fargate_memory(cpu: i32) -> Option<FargateMemory> {
    FARGATE_SIZES.iter().find(|(c, _)| *c == cpu).map(|(_, memory)| *memory)
}

impl FargateMemory {
    /// Every allowed size, smallest first.
    #[must_use]
    pub fn sizes(self) -> Vec<i32> {
        match self {
            Self::Listed(sizes) => sizes.to_vec(),
            Self::Range { min, max, step } => (min..=max).step_by(usize::try_from(step).unwrap_or(1024)).collect(),
        }
    }

    #[must_use]
    pub fn allows(self, memory_mib: i32) -> bool {
        match self {
            Self::Listed(sizes) => sizes.contains(&memory_mib),
            Self::Range { min, max, step } => (min..=max).contains(&memory_mib) && (memory_mib - min) % step == 0,
        }
    }

    /// The allowed sizes as a person reads them.
    #[must_use]
    pub fn describe(self) -> String {
        match self {
            Self::Listed(sizes) => {
                let shown: Vec<String> = sizes.iter().map(ToString::to_string).collect();
                match shown.split_last() {
                    Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
                    _ => shown.join(""),
                }
            }
            Self::Range { min, max, step } => format!("{min} to {max} in steps of {step}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arns_split_into_their_parts_in_any_partition() {
        let gov = Scope::of_arn("arn:aws-us-gov:dynamodb:us-gov-west-1:123456789012:table/blog-x").expect("scope");
        assert_eq!(
            gov.arn("logs", "log-group:/ecs/x"),
            "arn:aws-us-gov:logs:us-gov-west-1:123456789012:log-group:/ecs/x"
        );
        assert_eq!(Scope::of_arn("arn:aws:iam::123456789012:role/r"), None, "IAM ARNs have no region");
        assert_eq!(Arn::parse("not-an-arn"), None);
        assert_eq!(Arn::parse("arn:aws:s3:::bucket").map(|a| a.resource), Some("bucket"));
        assert_eq!(partition_of_region("cn-north-1"), "aws-cn");
        assert_eq!(partition_of_region("us-gov-east-1"), "aws-us-gov");
        assert_eq!(partition_of_region("eu-west-1"), "aws");
    }

    #[test]
    fn cidr_blocks_parse_and_nest() {
        let private = Cidr::parse("10.0.0.0/8").expect("cidr");
        assert!(private.contains(Cidr::parse("10.1.0.0/16").expect("cidr")));
        assert!(!private.contains(Cidr::parse("0.0.0.0/0").expect("cidr")));
        assert!(Cidr::parse("0.0.0.0/0").expect("cidr").contains(private));
        for bad in ["10.0.0.1/8", "10.0.0.0", "10.0.0.0/33", "::/0", "ten/8"] {
            assert_eq!(Cidr::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn fargate_allows_only_its_table() {
        let quarter = fargate_memory(256).expect("256");
        assert_eq!(quarter.sizes(), [512, 1024, 2048]);
        // 1536 MiB fits the 512..2048 span but is not a size 0.25 vCPU allows.
        assert!(!quarter.allows(1536));
        assert_eq!(quarter.describe(), "512, 1024 or 2048");
        assert_eq!(fargate_memory(8192).map(|m| m.sizes().len()), Some(12));
        assert_eq!(fargate_memory(300), None);
        assert_eq!(fargate_cpus(), [256, 512, 1024, 2048, 4096, 8192, 16384]);
    }
}
